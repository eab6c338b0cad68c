//! Static bearer tokens from a CSV token file (`--token-auth-file`), upstream's format:
//! `token,user,uid[,"group1,group2"]`, one per line.

use std::collections::HashMap;
use std::path::Path;

use crate::security::UserInfo;

#[derive(Clone, Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

/// Splits one CSV record (RFC 4180 quoting, as Go's `encoding/csv`).
fn split_record(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("extraneous or missing \" in quoted-field".into());
                    }
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            (false, '"') => return Err("bare \" in non-quoted-field".into()),
            (_, c) => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("extraneous or missing \" in quoted-field".into());
    }
    fields.push(cur);
    Ok(fields)
}

impl TokenFile {
    /// Parses the file's contents. Records with fewer than 3 columns are an error (as upstream);
    /// records with an empty token are skipped; a repeated token keeps the last record.
    pub fn parse(contents: &str) -> Result<TokenFile, String> {
        let mut tokens = HashMap::new();
        for (i, line) in contents.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let record =
                split_record(line).map_err(|e| format!("token file record {}: {e}", i + 1))?;
            if record.len() < 3 {
                return Err(format!(
                    "token file must have at least 3 columns (token, user name, user uid), found {} in record {}",
                    record.len(),
                    i + 1
                ));
            }
            if record[0].is_empty() {
                continue;
            }
            let groups = record
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                record[0].clone(),
                UserInfo {
                    name: record[1].clone(),
                    uid: record[2].clone(),
                    groups,
                    extra: Default::default(),
                },
            );
        }
        Ok(TokenFile { tokens })
    }

    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let contents = std::fs::read_to_string(path)
            .map_err(|e| format!("reading token file {}: {e}", path.display()))?;
        Self::parse(&contents)
    }

    /// The identity of `token`, without `system:authenticated` (the [`super::Authenticator`]
    /// adds it, as upstream's group adder).
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.tokens.get(token).cloned()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_format() {
        let f = TokenFile::parse(
            "abc123,alice,1001,\"dev,ops\"\nxyz,bob,1002\n\n,nobody,3\nabc123,alice2,1003,admins\n",
        )
        .unwrap();
        assert_eq!(f.len(), 2);
        let alice = f.authenticate("abc123").unwrap();
        assert_eq!(
            (alice.name.as_str(), alice.uid.as_str()),
            ("alice2", "1003")
        );
        assert_eq!(alice.groups, vec!["admins"]);
        let bob = f.authenticate("xyz").unwrap();
        assert!(bob.groups.is_empty());
        assert!(f.authenticate("").is_none());
        let f = TokenFile::parse("t,u,1,\"a,b\"").unwrap();
        assert_eq!(f.authenticate("t").unwrap().groups, vec!["a", "b"]);
    }

    #[test]
    fn rejects_short_or_malformed_records() {
        assert!(TokenFile::parse("tok,user")
            .unwrap_err()
            .contains("at least 3 columns"));
        assert!(TokenFile::parse("t,u,1,\"open").is_err());
        assert!(TokenFile::parse("t,u\"x,1").is_err());
    }
}
