//! `resource.Quantity`: parsing, comparison and the canonical string the API server writes back
//! (`"0.5"` is stored as `"500m"`, `"1.5Gi"` as `"1536Mi"`).
//!
//! Values are held as nano-units in an `i128`, which covers every suffix up to `Ei` exactly;
//! anything larger is rejected as out of range rather than silently wrapped.

use std::cmp::Ordering;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    /// The value in units of 10^-9 (upstream's smallest scale), rounded up like upstream.
    pub nanos: i128,
    pub format: Format,
}

pub const PARSE_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const NANO: i128 = 1_000_000_000;
/// Values beyond this are outside what upstream can represent in practice (±2^63 units).
const LIMIT: i128 = 9_223_372_036_854_775_807 * NANO;

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

impl Quantity {
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(PARSE_ERROR.to_string());
        }
        let b = s.as_bytes();
        let mut pos = 0;
        let negative = match b[0] {
            b'-' => {
                pos = 1;
                true
            }
            b'+' => {
                pos = 1;
                false
            }
            _ => false,
        };
        let int_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[int_start..pos];
        let mut frac_part = "";
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let fs = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[fs..pos];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(PARSE_ERROR.to_string());
        }
        let suffix = &s[pos..];
        let (base10_exp, base2_exp, format) = interpret_suffix(suffix)?;

        // digits * 10^(base10_exp - frac_len) * 2^base2_exp, expressed in nanos.
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let mantissa: i128 = if digits.is_empty() {
            0
        } else if digits.len() > 36 {
            return Err("quantity is out of range".to_string());
        } else {
            digits.parse().map_err(|_| PARSE_ERROR.to_string())?
        };
        let exp10 = base10_exp - frac_part.len() as i32 + 9;
        let mut nanos = if exp10 >= 0 {
            pow10(exp10 as u32)
                .and_then(|p| mantissa.checked_mul(p))
                .ok_or("quantity is out of range")?
        } else {
            let div = pow10((-exp10) as u32).unwrap_or(i128::MAX);
            // Upstream rounds up to the nearest representable nano value.
            let q = mantissa / div;
            if mantissa % div != 0 {
                q + 1
            } else {
                q
            }
        };
        if base2_exp > 0 {
            nanos = nanos
                .checked_mul(1i128 << base2_exp)
                .ok_or("quantity is out of range")?;
        }
        if nanos > LIMIT {
            return Err("quantity is out of range".to_string());
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// Parses a JSON quantity: a string, or a number as some clients send (`cpu: 1`).
    pub fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s).ok(),
            Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
            _ => None,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The value rounded up to whole units (`Value()` upstream).
    pub fn value(&self) -> i128 {
        let q = self.nanos / NANO;
        if self.nanos % NANO > 0 {
            q + 1
        } else {
            q
        }
    }

    /// The value in milli-units rounded up (`MilliValue()` upstream).
    pub fn milli_value(&self) -> i128 {
        let div = NANO / 1000;
        let q = self.nanos / div;
        if self.nanos % div > 0 {
            q + 1
        } else {
            q
        }
    }

    /// Upstream `Quantity.String()`: the canonical form.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            let abs = self.nanos.abs();
            if abs < 1024 * NANO || abs % NANO != 0 {
                format = Format::DecimalSI;
            }
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.abs();
        if format == Format::BinarySI {
            let mut units = abs / NANO;
            let mut exp = 0;
            while exp < 6 && units % 1024 == 0 {
                units /= 1024;
                exp += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
            return format!("{sign}{units}{suffix}");
        }
        // Decimal: strip zeros three at a time, starting from nanos (exponent -9).
        let mut mantissa = abs;
        let mut exp: i32 = -9;
        while mantissa % 1000 == 0 {
            mantissa /= 1000;
            exp += 3;
        }
        let suffix = match format {
            Format::DecimalExponent => {
                if exp == 0 {
                    String::new()
                } else {
                    format!("e{exp}")
                }
            }
            _ => match exp {
                -9 => "n".into(),
                -6 => "u".into(),
                -3 => "m".into(),
                0 => String::new(),
                3 => "k".into(),
                6 => "M".into(),
                9 => "G".into(),
                12 => "T".into(),
                15 => "P".into(),
                18 => "E".into(),
                e => format!("e{e}"),
            },
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn interpret_suffix(suffix: &str) -> Result<(i32, u32, Format), String> {
    Ok(match suffix {
        "" => (0, 0, Format::DecimalSI),
        "n" => (-9, 0, Format::DecimalSI),
        "u" => (-6, 0, Format::DecimalSI),
        "m" => (-3, 0, Format::DecimalSI),
        "k" => (3, 0, Format::DecimalSI),
        "M" => (6, 0, Format::DecimalSI),
        "G" => (9, 0, Format::DecimalSI),
        "T" => (12, 0, Format::DecimalSI),
        "P" => (15, 0, Format::DecimalSI),
        "E" => (18, 0, Format::DecimalSI),
        "Ki" => (0, 10, Format::BinarySI),
        "Mi" => (0, 20, Format::BinarySI),
        "Gi" => (0, 30, Format::BinarySI),
        "Ti" => (0, 40, Format::BinarySI),
        "Pi" => (0, 50, Format::BinarySI),
        "Ei" => (0, 60, Format::BinarySI),
        other => {
            let rest = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .ok_or_else(|| PARSE_ERROR.to_string())?;
            let exp: i32 = rest.parse().map_err(|_| PARSE_ERROR.to_string())?;
            if !(-100..=100).contains(&exp) {
                return Err("quantity is out of range".to_string());
            }
            (exp, 0, Format::DecimalExponent)
        }
    })
}

/// Rewrites every quantity of a resource map (`{"cpu": "0.5"}`) to its canonical form; leaves
/// values that do not parse alone so validation can report them.
pub fn canonicalize_map(map: &mut Value) {
    if let Some(m) = map.as_object_mut() {
        for v in m.values_mut() {
            if let Some(q) = Quantity::from_json(v) {
                *v = Value::String(q.canonical());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1500"), "1500");
        assert_eq!(canon("100Mi"), "100Mi");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("0.5Ki"), "512");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("129e6"), "129e6");
        assert_eq!(canon("128974848"), "128974848");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("-2Gi"), "-2Gi");
        assert_eq!(canon("0.1n"), "1n");
    }

    #[test]
    fn comparison_across_formats() {
        assert!(Quantity::parse("1Gi").unwrap() > Quantity::parse("1G").unwrap());
        assert_eq!(
            Quantity::parse("1")
                .unwrap()
                .cmp(&Quantity::parse("1000m").unwrap()),
            Ordering::Equal
        );
        assert_eq!(Quantity::parse("250m").unwrap().milli_value(), 250);
        assert_eq!(Quantity::parse("1.2").unwrap().value(), 2);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1x", "1Gib", ".", "1e", "--1"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert!(Quantity::parse("1e99").is_err());
    }
}
