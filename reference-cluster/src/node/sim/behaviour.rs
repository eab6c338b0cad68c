//! Reading a pod's `sim.kubeproof.dev/*` annotations into what one of its containers does.
//! The settings and their meaning are documented once, in `SIM.md` (the `sim` module's doc).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::node::clock::parse_go_duration;
use crate::resources::quantity::Quantity;

pub const PREFIX: &str = "sim.kubeproof.dev/";

/// What one container does in the `sim` runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub exit_after: Option<Duration>,
    pub exit_code: Option<i32>,
    pub crash: bool,
    pub ready_after: Option<Duration>,
    pub never_ready: bool,
    pub unready_after: Option<Duration>,
    pub not_ready_for: Option<Duration>,
    pub started_after: Option<Duration>,
    pub liveness_fail_after: Option<Duration>,
    pub memory_usage: Option<i64>,
    pub cpu_usage_milli: Option<i64>,
    pub image_pull_error: bool,
    pub image_pull_duration: Option<Duration>,
    pub start_error: Option<String>,
    pub termination_delay: Option<Duration>,
    pub ignore_sigterm: bool,
    pub pre_stop_duration: Option<Duration>,
    /// Lines the container writes right after its start line (`logs`), one per line of the value.
    pub log_lines: Vec<String>,
    /// How often it writes a `tick` line while running (`log-every`).
    pub log_every: Option<Duration>,
    /// Bytes its writable layer and logs hold (`ephemeral-storage-usage`).
    pub ephemeral_storage_usage: Option<i64>,
    /// Bytes each of the pod's `emptyDir` volumes holds (`emptydir-usage`, pod-wide).
    pub emptydir_usage: BTreeMap<String, i64>,
}

impl Behaviour {
    /// The behaviour of `container` from the pod's annotations: pod-wide settings first, then
    /// `<setting>.<container>` ones over them. Unknown settings and bad values are errors, so a
    /// typo shows up on the container instead of being silently ignored.
    pub fn from_annotations(
        annotations: Option<&BTreeMap<String, String>>,
        container: &str,
    ) -> Result<Behaviour, String> {
        let mut b = Behaviour::default();
        let Some(annotations) = annotations else {
            return Ok(b);
        };
        let mut specific = Vec::new();
        for (key, value) in annotations {
            let Some(name) = key.strip_prefix(PREFIX) else {
                continue;
            };
            match name.split_once('.') {
                None => b
                    .set(name, value)
                    .map_err(|e| format!("annotation {key}: {e}"))?,
                Some((setting, target)) if target == container => {
                    specific.push((key, setting, value))
                }
                Some((setting, _)) => {
                    // Another container's setting: still checked, so its typo is reported here too.
                    Behaviour::default()
                        .set(setting, value)
                        .map_err(|e| format!("annotation {key}: {e}"))?;
                }
            }
        }
        for (key, setting, value) in specific {
            b.set(setting, value)
                .map_err(|e| format!("annotation {key}: {e}"))?;
        }
        Ok(b)
    }

    /// Whether the annotations say how the container ends or what it logs, which takes the
    /// place of running its command (see `SIM.md`, Commands).
    pub fn overrides_command(&self) -> bool {
        self.exit_after.is_some()
            || self.exit_code.is_some()
            || self.crash
            || !self.log_lines.is_empty()
            || self.log_every.is_some()
    }

    fn set(&mut self, setting: &str, value: &str) -> Result<(), String> {
        let dur = || parse_go_duration(value);
        let flag = || match value.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("want \"true\" or \"false\", got {other:?}")),
        };
        match setting {
            "exit-after" => self.exit_after = Some(dur()?),
            "exit-code" => {
                let code: i32 = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("want an integer exit code, got {value:?}"))?;
                if !(0..=255).contains(&code) {
                    return Err(format!("exit code {code} is outside 0..255"));
                }
                self.exit_code = Some(code);
            }
            "crash" => self.crash = flag()?,
            "ready" => self.never_ready = !flag()?,
            "ready-after" => self.ready_after = Some(dur()?),
            "unready-after" => self.unready_after = Some(dur()?),
            "not-ready-for" => self.not_ready_for = Some(dur()?),
            "started-after" => self.started_after = Some(dur()?),
            "liveness-fail-after" => self.liveness_fail_after = Some(dur()?),
            "memory-usage" => self.memory_usage = Some(quantity(value, false)?),
            "cpu-usage" => self.cpu_usage_milli = Some(quantity(value, true)?),
            "ephemeral-storage-usage" => {
                self.ephemeral_storage_usage = Some(quantity(value, false)?)
            }
            "emptydir-usage" => self.emptydir_usage = volume_usage(value)?,
            "image-pull-error" => self.image_pull_error = flag()?,
            "image-pull-duration" => self.image_pull_duration = Some(dur()?),
            "start-error" => {
                let msg = value.trim();
                self.start_error = (!msg.is_empty()).then(|| msg.to_string());
            }
            "termination-delay" => self.termination_delay = Some(dur()?),
            "ignore-sigterm" => self.ignore_sigterm = flag()?,
            "pre-stop-duration" => self.pre_stop_duration = Some(dur()?),
            "logs" => self.log_lines = value.lines().map(str::to_string).collect(),
            "log-every" => {
                let every = dur()?;
                if every.is_zero() {
                    return Err("want a positive duration such as 1s".into());
                }
                self.log_every = Some(every);
            }
            other => return Err(format!("unknown setting {other:?} (see SIM.md)")),
        }
        Ok(())
    }
}

fn quantity(value: &str, milli: bool) -> Result<i64, String> {
    let q = Quantity::parse(value.trim())
        .map_err(|e| format!("want a quantity like 250m or 600Mi: {e}"))?;
    let v = if milli { q.milli_value() } else { q.value() };
    if v < 0 {
        return Err(format!("{value} is negative"));
    }
    Ok(v.min(i64::MAX as i128) as i64)
}

/// `emptydir-usage`'s value: `<volume>=<quantity>` pairs separated by commas.
pub fn volume_usage(value: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, q) = part.split_once('=').ok_or_else(|| {
            format!("want volume=quantity pairs such as data=2Mi,cache=10Mi, got {part:?}")
        })?;
        out.insert(name.trim().to_string(), quantity(q, false)?);
    }
    Ok(out)
}

/// Whether an image name asks for a failing pull: any image whose name contains `nonexistent`.
pub fn image_cannot_be_pulled(image: &str) -> bool {
    image.contains("nonexistent")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn pod_wide_settings_apply_to_every_container() {
        let a = ann(&[
            ("exit-after", "5s"),
            ("exit-code", "3"),
            ("memory-usage", "600Mi"),
            ("cpu-usage", "250m"),
        ]);
        let b = Behaviour::from_annotations(Some(&a), "main").unwrap();
        assert_eq!(b.exit_after, Some(Duration::from_secs(5)));
        assert_eq!(b.exit_code, Some(3));
        assert_eq!(b.memory_usage, Some(600 * 1024 * 1024));
        assert_eq!(b.cpu_usage_milli, Some(250));
    }

    #[test]
    fn container_settings_override_pod_wide_ones() {
        let a = ann(&[
            ("exit-after", "5s"),
            ("exit-after.sidecar", "1h"),
            ("crash.main", "true"),
        ]);
        let main = Behaviour::from_annotations(Some(&a), "main").unwrap();
        let sidecar = Behaviour::from_annotations(Some(&a), "sidecar").unwrap();
        assert!(main.crash);
        assert_eq!(main.exit_after, Some(Duration::from_secs(5)));
        assert!(!sidecar.crash);
        assert_eq!(sidecar.exit_after, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn log_settings_read_lines_and_a_period() {
        let a = ann(&[
            ("logs", "one\ntwo"),
            ("logs.side", "other"),
            ("log-every", "250ms"),
        ]);
        let main = Behaviour::from_annotations(Some(&a), "main").unwrap();
        assert_eq!(main.log_lines, ["one", "two"]);
        assert_eq!(main.log_every, Some(Duration::from_millis(250)));
        let side = Behaviour::from_annotations(Some(&a), "side").unwrap();
        assert_eq!(side.log_lines, ["other"]);
        let zero = ann(&[("log-every", "0s")]);
        assert!(Behaviour::from_annotations(Some(&zero), "main").is_err());
    }

    #[test]
    fn storage_settings_read_quantities_per_container_and_per_volume() {
        let a = ann(&[
            ("ephemeral-storage-usage", "2Mi"),
            ("ephemeral-storage-usage.big", "1Gi"),
            ("emptydir-usage", "data=4Mi, cache=1k"),
        ]);
        let main = Behaviour::from_annotations(Some(&a), "main").unwrap();
        assert_eq!(main.ephemeral_storage_usage, Some(2 * 1024 * 1024));
        assert_eq!(
            main.emptydir_usage,
            BTreeMap::from([("cache".to_string(), 1000), ("data".to_string(), 4 << 20)])
        );
        let big = Behaviour::from_annotations(Some(&a), "big").unwrap();
        assert_eq!(big.ephemeral_storage_usage, Some(1 << 30));
        for bad in ["data", "data=lots", "data=-1Mi"] {
            let err = Behaviour::from_annotations(Some(&ann(&[("emptydir-usage", bad)])), "m")
                .unwrap_err();
            assert!(err.contains("emptydir-usage"), "{err}");
        }
    }

    #[test]
    fn typos_and_bad_values_are_reported() {
        for (k, v) in [
            ("exit-afterr", "5s"),
            ("exit-after", "5"),
            ("exit-code", "x"),
            ("exit-code", "300"),
            ("crash", "yes"),
            ("memory-usage", "lots"),
            ("ready-after.other", "soon"),
        ] {
            let a = ann(&[(k, v)]);
            let err = Behaviour::from_annotations(Some(&a), "main").unwrap_err();
            assert!(err.contains(&format!("{PREFIX}{k}")), "{err}");
        }
    }

    #[test]
    fn other_annotations_are_ignored() {
        let mut a = ann(&[]);
        a.insert("example.com/exit-after".into(), "garbage".into());
        assert_eq!(
            Behaviour::from_annotations(Some(&a), "main").unwrap(),
            Behaviour::default()
        );
        assert_eq!(
            Behaviour::from_annotations(None, "main").unwrap(),
            Behaviour::default()
        );
        assert!(image_cannot_be_pulled("registry.example/nonexistent:1.0"));
        assert!(!image_cannot_be_pulled("nginx"));
    }
}
