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
