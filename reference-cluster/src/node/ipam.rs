//! Pod addresses. The cluster CIDR (default `127.244.0.0/16`, on loopback so that a runtime
//! running real processes can bind them) is cut into one block per node, like the node-ipam
//! controller's `podCIDR`; each node hands out addresses from its block the way host-local
//! IPAM does: never the network, the gateway (`.1`) or the broadcast address, and round-robin
//! so a freed address is not reused at once.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// An IPv4 block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(base: Ipv4Addr, prefix: u8) -> Result<Cidr, String> {
        if prefix > 32 {
            return Err(format!("invalid CIDR prefix /{prefix}"));
        }
        let mask = mask(prefix);
        if u32::from(base) & !mask != 0 {
            return Err(format!("{base}/{prefix} has host bits set"));
        }
        Ok(Cidr { base, prefix })
    }

    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("invalid CIDR address: {s}"))?;
        Cidr::new(ip, prefix)
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    /// The `index`-th sub-block of size `/sub_prefix`, if it fits.
    pub fn subnet(&self, sub_prefix: u8, index: u64) -> Option<Cidr> {
        if sub_prefix < self.prefix || sub_prefix > 32 {
            return None;
        }
        let count = 1u64 << (sub_prefix - self.prefix) as u32;
        if index >= count {
            return None;
        }
        let base = u32::from(self.base) as u64 + index * (1u64 << (32 - sub_prefix as u32));
        Some(Cidr {
            base: Ipv4Addr::from(base as u32),
            prefix: sub_prefix,
        })
    }

    pub fn subnet_count(&self, sub_prefix: u8) -> u64 {
        if sub_prefix < self.prefix || sub_prefix > 32 {
            return 0;
        }
        1u64 << (sub_prefix - self.prefix) as u32
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

/// A pod address range held for as long as this value lives: an exclusive `flock` on a file
/// per range in a directory every kubeproof cluster on the host shares, so two clusters whose
/// pods are real processes never hand out the same loopback addresses. The kernel drops the
/// lock when the process ends, so a killed cluster frees its range.
#[derive(Debug)]
pub struct CidrClaim {
    pub cidr: Cidr,
    _locks: Vec<std::fs::File>,
}

/// Where clusters on this host claim their pod ranges: a fixed path, not `$TMPDIR`, so every
/// cluster on the host sees the same locks whatever its environment.
pub fn default_claim_dir() -> std::path::PathBuf {
    std::path::PathBuf::from("/tmp/kubeproof-pod-cidrs")
}

/// Blocks a cluster's pods must never get: 127.0.0.0/16 (the API server and kubelets on
/// 127.0.0.1) and the Service range 127.96.0.0/16.
const RESERVED: [(Ipv4Addr, u8); 2] = [
    (Ipv4Addr::new(127, 0, 0, 0), 16),
    (Ipv4Addr::new(127, 96, 0, 0), 16),
];

fn overlaps(a: Cidr, b: Cidr) -> bool {
    let p = a.prefix.min(b.prefix);
    u32::from(a.base) & mask(p) == u32::from(b.base) & mask(p)
}

/// The blocks a cluster needing `blocks` node blocks of `/node_mask` may take, best first:
/// inside `preferred` (so the first cluster gets `preferred`'s start, as without a claim),
/// then the rest of 127.0.0.0/8 outside the reserved ranges.
pub fn candidates(preferred: Cidr, node_mask: u8, blocks: u64) -> Vec<Cidr> {
    let need = blocks.max(1).next_power_of_two();
    let bits = need.trailing_zeros() as u8;
    // At least 16 node blocks per cluster, and never wider than what was asked for.
    let prefix = node_mask.saturating_sub(bits.max(4)).max(preferred.prefix);
    let loopback = Cidr {
        base: Ipv4Addr::new(127, 0, 0, 0),
        prefix: 8,
    };
    let reserved: Vec<Cidr> = RESERVED
        .iter()
        .map(|(base, prefix)| Cidr {
            base: *base,
            prefix: *prefix,
        })
        .collect();
    let inside = (0..preferred.subnet_count(prefix)).filter_map(|i| preferred.subnet(prefix, i));
    let outside = (0..loopback.subnet_count(prefix)).filter_map(|i| loopback.subnet(prefix, i));
    let mut out: Vec<Cidr> = Vec::new();
    for c in inside.chain(outside) {
        if !overlaps(c, loopback) || reserved.iter().any(|r| overlaps(c, *r)) || out.contains(&c) {
            continue;
        }
        out.push(c);
    }
    out
}

/// Ranges are locked in units of this prefix, so claims of different sizes still conflict
/// when they overlap.
const CLAIM_UNIT: u8 = 20;

/// The lock units covering `c`.
fn units(c: Cidr) -> Vec<Cidr> {
    if c.prefix <= CLAIM_UNIT {
        (0..c.subnet_count(CLAIM_UNIT))
            .filter_map(|i| c.subnet(CLAIM_UNIT, i))
            .collect()
    } else {
        let base = Ipv4Addr::from(u32::from(c.base) & mask(CLAIM_UNIT));
        vec![Cidr {
            base,
            prefix: CLAIM_UNIT,
        }]
    }
}

/// Claims the first of `choices` no other running cluster holds, its lock files in `dir`.
pub fn claim(dir: &std::path::Path, choices: &[Cidr]) -> Result<CidrClaim, String> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create {} to claim a pod address range: {e}",
            dir.display()
        )
    })?;
    // Other users' clusters claim here too.
    let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777));
    let lock = |u: &Cidr| -> Option<std::fs::File> {
        let path = dir.join(format!("{}_{}.lock", u.base, u.prefix));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok()?;
        // SAFETY: flock(2) on a descriptor this closure owns.
        let r =
            unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        (r == 0).then_some(file)
    };
    for c in choices {
        // Dropping a partial set releases it.
        if let Some(locks) = units(*c).iter().map(lock).collect::<Option<Vec<_>>>() {
            return Ok(CidrClaim {
                cidr: *c,
                _locks: locks,
            });
        }
    }
    let shown: Vec<String> = choices.iter().map(ToString::to_string).collect();
    Err(format!(
        "every pod address range this cluster may use ({}) is held by another kubeproof cluster on this host (lock files in {}): stop one, or choose a free range with --pod-cidr",
        if shown.len() > 4 {
            format!("{}, … {} ranges", shown[..4].join(", "), shown.len())
        } else {
            shown.join(", ")
        },
        dir.display()
    ))
}

/// The addresses of one node's block.
#[derive(Clone, Debug)]
pub struct PodIps {
    cidr: Cidr,
    used: HashSet<u32>,
    next: u64,
}

impl PodIps {
    pub fn new(cidr: Cidr) -> PodIps {
        PodIps {
            cidr,
            used: HashSet::new(),
            next: 2,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// Offsets 2 .. size-2: not the network, gateway or broadcast address.
    fn usable(&self) -> u64 {
        self.cidr.size().saturating_sub(3)
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let usable = self.usable();
        if usable == 0 || self.used.len() as u64 >= usable {
            return None;
        }
        for _ in 0..usable {
            let offset = self.next;
            self.next = if offset + 1 >= self.cidr.size() - 1 {
                2
            } else {
                offset + 1
            };
            let ip = u32::from(self.cidr.base).wrapping_add(offset as u32);
            if self.used.insert(ip) {
                return Some(Ipv4Addr::from(ip));
            }
        }
        None
    }

    /// Marks an address as taken (one already written to a pod before a restart).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        let base = u32::from(self.cidr.base);
        let offset = v.wrapping_sub(base) as u64;
        if v < base || offset < 2 || offset >= self.cidr.size() - 1 {
            return false;
        }
        self.used.insert(v)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_cidr_splits_into_node_blocks() {
        let cluster = Cidr::parse("127.244.0.0/16").unwrap();
        assert_eq!(cluster.subnet(24, 0).unwrap().to_string(), "127.244.0.0/24");
        assert_eq!(cluster.subnet(24, 3).unwrap().to_string(), "127.244.3.0/24");
        assert_eq!(cluster.subnet_count(24), 256);
        assert!(cluster.subnet(24, 256).is_none());
        assert!(Cidr::parse("127.244.0.1/16").is_err());
        assert!(Cidr::parse("bogus").is_err());
        assert!(Cidr::parse("127.0.0.0/33").is_err());
    }

    #[test]
    fn running_clusters_get_distinct_ranges() {
        let default = Cidr::parse("127.244.0.0/16").unwrap();
        let c = candidates(default, 24, 3);
        assert_eq!(
            c[0].to_string(),
            "127.244.0.0/20",
            "node-0 keeps 127.244.0.0/24"
        );
        assert_eq!(c[1].to_string(), "127.244.16.0/20");
        assert_eq!(
            c[16].to_string(),
            "127.1.0.0/20",
            "then the rest of 127.0.0.0/8"
        );
        for r in &c {
            assert!(!overlaps(*r, Cidr::parse("127.0.0.0/16").unwrap()), "{r}");
            assert!(!overlaps(*r, Cidr::parse("127.96.0.0/16").unwrap()), "{r}");
            assert!(r.subnet_count(24) >= 3);
        }
        assert_eq!(
            candidates(default, 24, 100)[0].to_string(),
            "127.244.0.0/17"
        );
        assert_eq!(
            candidates(default, 24, 256)[0].to_string(),
            "127.244.0.0/16"
        );
        let fixed = Cidr::parse("127.50.0.0/16").unwrap();
        assert_eq!(candidates(fixed, 24, 1)[0].to_string(), "127.50.0.0/20");

        let dir = tempfile::tempdir().unwrap();
        let a = claim(dir.path(), &c).unwrap();
        let b = claim(dir.path(), &c).unwrap();
        assert_eq!(a.cidr, c[0]);
        assert_eq!(b.cidr, c[1], "a held range is skipped");
        drop(a);
        assert_eq!(
            claim(dir.path(), &c).unwrap().cidr,
            c[0],
            "a released range is free"
        );
        let err = claim(dir.path(), &c[1..2]).unwrap_err();
        assert!(
            err.contains("127.244.16.0/20") && err.contains("--pod-cidr"),
            "{err}"
        );
        // A wider range overlapping a held one is refused, a narrower one inside it too.
        assert!(claim(dir.path(), &[default]).is_err());
        assert!(claim(dir.path(), &[Cidr::parse("127.244.17.0/24").unwrap()]).is_err());
        assert!(claim(dir.path(), &[Cidr::parse("127.50.0.0/16").unwrap()]).is_ok());
    }

    #[test]
    fn addresses_skip_network_gateway_and_broadcast() {
        let mut ips = PodIps::new(Cidr::parse("127.244.7.0/29").unwrap());
        let got: Vec<String> = std::iter::from_fn(|| ips.allocate())
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "127.244.7.2",
                "127.244.7.3",
                "127.244.7.4",
                "127.244.7.5",
                "127.244.7.6"
            ]
        );
        assert!(ips.allocate().is_none(), "the block is full");
        ips.release("127.244.7.4".parse().unwrap());
        assert_eq!(ips.allocate().unwrap().to_string(), "127.244.7.4");
    }

    #[test]
    fn freed_addresses_are_not_reused_at_once() {
        let mut ips = PodIps::new(Cidr::parse("127.244.0.0/24").unwrap());
        let a = ips.allocate().unwrap();
        ips.release(a);
        assert_ne!(ips.allocate().unwrap(), a);
        assert!(ips.reserve("127.244.0.9".parse().unwrap()));
        assert!(
            !ips.reserve("127.244.0.9".parse().unwrap()),
            "already taken"
        );
        assert!(
            !ips.reserve("127.244.1.9".parse().unwrap()),
            "outside the block"
        );
        assert!(!ips.reserve("127.244.0.255".parse().unwrap()), "broadcast");
    }
}
