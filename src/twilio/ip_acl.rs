//! The other way a linked account's trunk can know the calls vocals places (`[outbound] termination_auth =
//! "ip"`): an IP access control list of the nodes' addresses (`termination_ips`) instead of a credential list.
//! vocals keeps one list (`vocals`) per account holding exactly the configured addresses (those missing are
//! added, those no longer configured deleted, the others kept as they are) and associates it with the trunk.
//! Its SID is kept in the store, so a second number reuses it; a list deleted in Twilio's console is made again.
//! Calls placed on such a trunk carry no digest credentials. Unlinking the account takes the list off the trunk
//! and deletes it.

use std::net::{IpAddr, Ipv4Addr};

use super::termination::gone_is_fine;
use super::{Credentials, FlowError, IpAddress, Provisioner, TwilioError};

/// The IP access control list's name in the account.
pub const IP_ACL_NAME: &str = "vocals";

/// Twilio's limit of addresses in one IP access control list.
pub const MAX_ADDRESSES: usize = 100;

/// The shortest prefix taken: a shorter one would let a good part of the internet place calls on the trunk.
pub const MIN_PREFIX: u8 = 8;

/// An IPv4 address (`203.0.113.10`) or block (`198.51.100.0/30`) that a vocals node's calls come from, as Twilio
/// sees them: public, given by its first address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Block {
    pub address: Ipv4Addr,
    /// 8 to 32; 32 is the one address.
    pub prefix: u8,
}

impl Ipv4Block {
    /// `a.b.c.d` or `a.b.c.d/prefix`; otherwise what is expected instead, in words.
    pub fn parse(text: &str) -> Result<Ipv4Block, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address = match address.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4,
            Ok(IpAddr::V6(_)) => {
                return Err("an IPv4 address: Twilio's IP access control lists take IPv4 only, not IPv6".into());
            }
            Err(_) => return Err("an IPv4 address, or a block like 198.51.100.0/30".into()),
        };
        let prefix = match prefix {
            None => 32,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if (MIN_PREFIX..=32).contains(&p) => p,
                _ => return Err(format!("a prefix length from {MIN_PREFIX} to 32 after the /")),
            },
        };
        let mask = u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0);
        let first = Ipv4Addr::from(u32::from(address) & mask);
        if first != address {
            return Err(format!("the block's first address, {first}/{prefix}"));
        }
        if let Some(kind) = not_public(address) {
            return Err(format!(
                "a public address, not {kind}: Twilio sees the public address the nodes' calls come from"
            ));
        }
        Ok(Ipv4Block { address, prefix })
    }

    /// Whether Twilio's entry is this block.
    pub fn is(&self, entry: &IpAddress) -> bool {
        entry.ip_address.trim().parse::<Ipv4Addr>().is_ok_and(|a| a == self.address) && entry.prefix() == self.prefix
    }
}

impl std::fmt::Display for Ipv4Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix {
            32 => write!(f, "{}", self.address),
            p => write!(f, "{}/{p}", self.address),
        }
    }
}

/// What kind of address Twilio never sees calls come from, if it is one.
fn not_public(a: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = a.octets();
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_private() {
        Some("a private address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if first == 100 && (64..128).contains(&second) {
        Some("a carrier-grade NAT address")
    } else if a.is_multicast() || a.is_broadcast() || first >= 240 {
        Some("a multicast or reserved address")
    } else {
        None
    }
}

/// What makes Twilio's list hold exactly `wanted`: the blocks to add, and the entries to delete (those no longer
/// configured, and a second entry of one block).
pub fn differences<'a>(present: &'a [IpAddress], wanted: &'a [Ipv4Block]) -> (Vec<&'a Ipv4Block>, Vec<&'a IpAddress>) {
    let mut matched = vec![false; wanted.len()];
    let mut extra = Vec::new();
    for entry in present {
        match (0..wanted.len()).find(|&i| !matched[i] && wanted[i].is(entry)) {
            Some(i) => matched[i] = true,
            None => extra.push(entry),
        }
    }
    let missing = wanted.iter().zip(&matched).filter(|(_, m)| !**m).map(|(b, _)| b).collect();
    (missing, extra)
}

impl Provisioner {
    /// The trunk accepts calls from vocals' IP access control list, which holds exactly `blocks`: whatever of that
    /// is missing is made (the list once per account, its SID kept in the store as `kept`).
    pub(super) async fn ensure_ip_acl(
        &self,
        creds: &Credentials,
        trunk: &str,
        kept: Option<&str>,
        blocks: &[Ipv4Block],
    ) -> Result<(), FlowError> {
        let account = creds.account_sid.as_str();
        let existing = match kept {
            Some(acl) => match self.twilio.ip_acl(creds, acl).await {
                Ok(_) => Some(acl.to_string()),
                Err(e) if e.is_not_found() => {
                    tracing::warn!(%account, %acl, "vocals' IP access control list is gone from Twilio; creating another");
                    None
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let acl = match existing {
            Some(acl) => acl,
            None => {
                let acl = self.twilio.create_ip_acl(creds, IP_ACL_NAME).await?.sid;
                // Kept before its addresses are added: a failure from here on is finished by a retry, and no list
                // is ever left in the account that vocals does not know of.
                self.store.set_account_ip_acl(account, Some(&acl)).await?;
                acl
            }
        };
        let present = self.twilio.ip_addresses(creds, &acl).await?;
        let (missing, extra) = differences(&present, blocks);
        for entry in extra {
            tracing::info!(%account, %acl, address = %entry.ip_address, prefix = entry.prefix(),
                "an address no longer in outbound.termination_ips; deleting it from vocals' IP access control list");
            gone_is_fine(self.twilio.delete_ip_address(creds, &acl, &entry.sid).await)?;
        }
        for block in missing {
            let (name, address) = (format!("vocals {block}"), block.address.to_string());
            self.twilio.create_ip_address(creds, &acl, &name, &address, block.prefix).await?;
        }
        let attached = self.twilio.trunk_ip_acls(creds, trunk).await?;
        if !attached.iter().any(|l| l.sid == acl) {
            self.twilio.associate_ip_acl(creds, trunk, &acl).await?;
        }
        Ok(())
    }

    /// Takes vocals' IP access control list off `trunk` and deletes it with its addresses (either already gone is
    /// fine).
    pub(super) async fn remove_ip_acl(
        &self,
        creds: &Credentials,
        trunk: Option<&str>,
        acl: &str,
    ) -> Result<(), TwilioError> {
        if let Some(trunk) = trunk {
            gone_is_fine(self.twilio.disassociate_ip_acl(creds, trunk, acl).await)?;
        }
        gone_is_fine(self.twilio.delete_ip_acl(creds, acl).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str) -> Ipv4Block {
        Ipv4Block::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn entry(sid: &str, address: &str, prefix: Option<u8>) -> IpAddress {
        IpAddress {
            sid: sid.into(),
            ip_address: address.into(),
            cidr_prefix_length: prefix,
            friendly_name: String::new(),
        }
    }

    #[test]
    fn addresses_and_blocks_read_and_write_back_as_given() {
        assert_eq!(block("203.0.113.10"), Ipv4Block { address: Ipv4Addr::new(203, 0, 113, 10), prefix: 32 });
        assert_eq!(block(" 198.51.100.0/30 "), Ipv4Block { address: Ipv4Addr::new(198, 51, 100, 0), prefix: 30 });
        assert_eq!(block("203.0.113.10/32"), block("203.0.113.10"));
        for text in ["203.0.113.10", "198.51.100.0/30", "8.0.0.0/8"] {
            assert_eq!(block(text).to_string(), text);
        }
    }

    #[test]
    fn what_twilio_would_refuse_or_never_see_is_refused_saying_why() {
        for (text, says) in [
            ("2001:db8::1", "IPv4 only, not IPv6"),
            ("2001:db8::/64", "IPv4 only, not IPv6"),
            ("[2001:db8::1]", "IPv4 only, not IPv6"),
            ("vocals.example.com", "an IPv4 address"),
            ("203.0.113", "an IPv4 address"),
            ("198.51.100.0/33", "from 8 to 32"),
            ("8.0.0.0/7", "from 8 to 32"),
            ("198.51.100.0/", "from 8 to 32"),
            ("198.51.100.1/30", "the block's first address, 198.51.100.0/30"),
            ("10.0.0.5", "not a private address"),
            ("192.168.1.0/24", "not a private address"),
            ("127.0.0.1", "not a loopback address"),
            ("0.0.0.0", "not the unspecified address"),
            ("169.254.1.1", "not a link-local address"),
            ("100.64.0.1", "not a carrier-grade NAT address"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "multicast or reserved"),
        ] {
            let e = Ipv4Block::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn an_entry_is_a_block_when_its_address_and_prefix_are_the_same() {
        let one = block("203.0.113.10");
        assert!(one.is(&entry("IP1", "203.0.113.10", Some(32))));
        // Twilio answers an address added without a prefix with none, or 0: the whole address.
        assert!(one.is(&entry("IP1", "203.0.113.10", None)));
        assert!(one.is(&entry("IP1", "203.0.113.10", Some(0))));
        assert!(!one.is(&entry("IP1", "203.0.113.10", Some(31))));
        assert!(!one.is(&entry("IP1", "203.0.113.11", Some(32))));
        assert!(block("198.51.100.0/30").is(&entry("IP2", "198.51.100.0", Some(30))));
        assert!(!block("198.51.100.0/30").is(&entry("IP2", "198.51.100.0", None)));
    }

    #[test]
    fn the_differences_add_what_is_missing_and_delete_what_is_no_longer_configured() {
        let wanted = [block("203.0.113.10"), block("198.51.100.0/30"), block("203.0.113.20")];
        let present = [
            entry("IP1", "203.0.113.10", Some(32)),
            entry("IP2", "192.0.2.7", Some(32)),
            entry("IP3", "198.51.100.0", Some(29)),
            entry("IP4", "203.0.113.10", None),
        ];
        let (missing, extra) = differences(&present, &wanted);
        assert_eq!(missing, [&wanted[1], &wanted[2]]);
        let extra: Vec<&str> = extra.iter().map(|e| e.sid.as_str()).collect();
        assert_eq!(extra, ["IP2", "IP3", "IP4"], "another address, another prefix, and a second entry of one block");
        let (missing, extra) = differences(&present[..1], &wanted[..1]);
        assert!(missing.is_empty() && extra.is_empty(), "nothing to do when the list is right");
        let (missing, extra) = differences(&[], &wanted);
        assert_eq!((missing.len(), extra.len()), (3, 0));
    }

    #[test]
    fn twilios_ip_address_json_reads_into_an_entry() {
        // The IpAddress resource as Twilio documents it.
        let json = serde_json::json!({
            "sid": "IPaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ip_access_control_list_sid": "ALaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "friendly_name": "friendly_name",
            "ip_address": "192.1.1.2",
            "cidr_prefix_length": 30,
            "date_created": "Mon, 20 Jul 2015 17:27:10 +0000",
            "date_updated": "Mon, 20 Jul 2015 17:27:10 +0000",
            "uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/SIP/IpAccessControlLists/ALaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/IpAddresses/IPaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
        });
        let e: IpAddress = serde_json::from_value(json).unwrap();
        assert_eq!((e.ip_address.as_str(), e.cidr_prefix_length, e.prefix()), ("192.1.1.2", Some(30), 30));
        let bare: IpAddress =
            serde_json::from_value(serde_json::json!({"sid": "IP1", "ip_address": "192.1.1.2"})).unwrap();
        assert_eq!(bare.prefix(), 32);
    }
}
