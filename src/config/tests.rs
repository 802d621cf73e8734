//! The configuration's tests: defaults, precedence (file < environment), every key's checks, the shipped file.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn file(text: &str) -> tempfile_like::File {
    tempfile_like::File::new(text)
}

#[test]
fn defaults_need_no_file() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(c.sip.listen_udp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(c.sip.listen_tcp, Some("0.0.0.0:5060".parse().unwrap()));
    assert_eq!(c.sip.limits, Limits::default());
    assert_eq!(c.state_dir, PathBuf::from("./vocals-data"));
    assert_eq!(c.log.format, LogFormat::Auto);
}

#[test]
fn environment_overrides_the_file() {
    let f = file("[sip]\nlisten_udp = \"127.0.0.1:5070\"\nmax_headers = 100\n");
    let c =
        Config::load(Some(f.path()), env(&[("VOCALS_SIP_LISTEN_UDP", "[::1]:5080"), ("VOCALS_SIP_LISTEN_TCP", "")]))
            .unwrap();
    assert_eq!(c.sip.listen_udp, Some("[::1]:5080".parse().unwrap()));
    assert_eq!(c.sip.listen_tcp, None);
    assert_eq!(c.sip.limits.max_headers, 100);
}

#[test]
fn state_dir_follows_systemd_and_the_environment() {
    let c = Config::load(None, env(&[("STATE_DIRECTORY", "/var/lib/vocals")])).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/vocals"));
    let c = Config::load(None, env(&[("VOCALS_STATE_DIR", "/srv/v")])).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/srv/v"));
}

#[test]
fn bad_values_name_their_key_and_what_is_allowed() {
    let e = Config::load(None, env(&[("VOCALS_SIP_LISTEN_UDP", "5060")])).unwrap_err().to_string();
    assert!(e.starts_with("sip.listen_udp: \"5060\" is not valid"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_SIP_MAX_MESSAGE_SIZE", "10")])).unwrap_err().to_string();
    assert!(e.contains("from 1500 to 1048576"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_LOG_FORMAT", "xml")])).unwrap_err().to_string();
    assert!(e.contains("auto, pretty, plain, json"), "{e}");
}

#[test]
fn the_tcp_reserve_for_exempt_sources_is_less_than_the_connections() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!((c.sip.tcp_max_connections, c.sip.tcp_reserved_for_exempt), (1024, 64));
    let c = Config::load(
        None,
        env(&[("VOCALS_SIP_TCP_MAX_CONNECTIONS", "10"), ("VOCALS_SIP_TCP_RESERVED_FOR_EXEMPT", "9")]),
    );
    assert_eq!(c.unwrap().sip.tcp_reserved_for_exempt, 9);
    // A reserve as large as the table would leave the other allowed sources (a health check on loopback, say)
    // nothing: refused, naming both keys.
    let e = Config::load(None, env(&[("VOCALS_SIP_TCP_MAX_CONNECTIONS", "64")])).unwrap_err().to_string();
    assert!(e.starts_with("sip.tcp_reserved_for_exempt: \"64\" is not valid"), "{e}");
    assert!(e.contains("from 0 to 63 (less than sip.tcp_max_connections, 64)"), "{e}");
}

#[test]
fn unknown_keys_are_refused_from_file_and_environment() {
    let f = file("[sip]\nlisten_udpp = \"x\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("sip.listen_udpp: unknown key"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_SIP_LISTEN", "x")])).unwrap_err().to_string();
    assert!(e.contains("VOCALS_SIP_LISTEN"), "{e}");
    assert!(Config::load(None, env(&[("VOCALS_CONFIG", "/etc/vocals.toml")])).is_ok());
}

#[test]
fn numbers_are_read_from_the_file_and_checked() {
    let f =
        file("[[numbers]]\nnumber = \"+14155550123\"\nagent = \"echo\"\n\n[[numbers]]\nnumber = \"+14155550124\"\n");
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(c.numbers.len(), 2);
    assert_eq!(c.numbers[0].agent.as_deref(), Some("echo"));
    assert_eq!(c.numbers[1].agent, None);
    let f = file("[[numbers]]\nnumber = \"4155550123\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("numbers[0].number:") && e.contains("E.164"), "{e}");
    let f = file("[[numbers]]\nnumber = \"+14155550123\"\nagnet = \"x\"\n");
    assert!(Config::load(Some(f.path()), env(&[])).unwrap_err().to_string().contains("numbers[0].agnet"));
}

#[test]
fn tls_takes_a_certificate_and_a_key_together_and_srtp_a_policy() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!((c.sip.listen_tls, c.sip.tls.clone()), (Some("0.0.0.0:5061".parse().unwrap()), None));
    assert_eq!(c.media.srtp, SrtpPolicy::Allowed);
    let both = env(&[("VOCALS_SIP_TLS_CERT", "/etc/vocals/cert.pem"), ("VOCALS_SIP_TLS_KEY", "/etc/vocals/key.pem")]);
    let c = Config::load(None, both).unwrap();
    assert_eq!(c.sip.tls, Some((PathBuf::from("/etc/vocals/cert.pem"), PathBuf::from("/etc/vocals/key.pem"))));
    let e = Config::load(None, env(&[("VOCALS_SIP_TLS_CERT", "/c.pem")])).unwrap_err().to_string();
    assert!(e.starts_with("sip.tls_key:"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_MEDIA_SRTP", "on")])).unwrap_err().to_string();
    assert!(e.contains("off, allowed, required"), "{e}");
    let f = file("[[numbers]]\nnumber = \"+14155550123\"\nagent = \"echo\"\nsrtp = \"required\"\n");
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(c.numbers[0].srtp, Some(SrtpPolicy::Required));
    let f = file("[[numbers]]\nnumber = \"+14155550123\"\nsrtp = \"yes\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("numbers[0].srtp:"), "{e}");
}

#[test]
fn agents_are_read_from_the_file_and_numbers_must_name_one() {
    let f = file(
        "default_agent = \"support\"\n[[agents]]\nname = \"support\"\nurl = \"ws://127.0.0.1:8765/stream\"\n\
         connect_timeout_ms = 1500\n[agents.parameters]\nsystem_prompt = \"Be brief.\"\ntemperature = 0.2\n\
         [[numbers]]\nnumber = \"+14155550123\"\nagent = \"support\"\n",
    );
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    let a = &c.agents[0];
    assert_eq!((a.name.as_str(), a.url.as_str()), ("support", "ws://127.0.0.1:8765/stream"));
    assert_eq!(a.connect_timeout, Duration::from_millis(1500));
    assert_eq!(a.parameters["system_prompt"], "Be brief.");
    assert_eq!(a.parameters["temperature"], "0.2", "parameters travel as strings");
    let f = file("[[numbers]]\nnumber = \"+14155550123\"\nagent = \"sales\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("numbers[0].agent: \"sales\""), "{e}");
    let e = Config::load(None, env(&[("VOCALS_DEFAULT_AGENT", "nobody")])).unwrap_err().to_string();
    assert!(e.starts_with("default_agent:"), "{e}");
    let f = file("[[agents]]\nname = \"a\"\nurl = \"http://x\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("agents[0].url:"), "{e}");
    let f = file("[[agents]]\nname = \"echo\"\nurl = \"ws://x/y\"\n");
    assert!(Config::load(Some(f.path()), env(&[])).unwrap_err().to_string().starts_with("agents[0].name"));
}

#[test]
fn the_transfer_policy_has_safe_defaults_and_each_agent_may_have_its_own() {
    use crate::agent::transfer::{Domain, Prefix, TransferPolicy};
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(c.transfer, TransferPolicy::default());
    let denied = |p: &str| c.transfer.deny_prefixes.contains(&Prefix::parse(p).unwrap());
    assert!(denied("+1900") && denied("+1976"), "NANP premium rate");
    assert!(denied("+1876") && denied("+1809") && denied("+1284"), "the Caribbean's +1 numbers at international rates");
    assert!(!denied("+1415") && !denied("+1212") && !denied("+1416"), "the US and Canada");
    assert_eq!((c.transfer.allow_prefixes.len(), c.transfer.allow_domains.len(), c.transfer.max_per_call), (0, 0, 3));
    let c = Config::load(
        None,
        env(&[("VOCALS_TRANSFER_ALLOW_PREFIXES", "+1, +44"), ("VOCALS_TRANSFER_ALLOW_DOMAINS", "PBX.example.com")]),
    )
    .unwrap();
    assert_eq!(c.transfer.allow_prefixes.len(), 2);
    assert_eq!(c.transfer.allow_domains, vec![Domain::parse("pbx.example.com").unwrap()]);
    let e = Config::load(None, env(&[("VOCALS_TRANSFER_DENY_PREFIXES", "+1900,1976")])).unwrap_err().to_string();
    assert!(e.starts_with("transfer.deny_prefixes: \"1976\" is not an E.164 prefix"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_TRANSFER_MAX_PER_CALL", "1000")])).unwrap_err().to_string();
    assert!(e.starts_with("transfer.max_per_call:") && e.contains("0 to 100"), "{e}");
    let f = file(
        "[[agents]]\nname = \"sales\"\nurl = \"ws://127.0.0.1:8765/s\"\n[agents.transfer]\n\
         allow_domains = [\"pbx.example.com\"]\nmax_per_call = 1\n",
    );
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    let policy = c.agents[0].transfer.over(&c.transfer);
    assert_eq!((policy.allow_domains.len(), policy.max_per_call, policy.deny_prefixes.len()), (1, 1, 23));
    let f = file("[[agents]]\nname = \"s\"\nurl = \"ws://x/y\"\n[agents.transfer]\nallow_prefixes = \"44\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("agents[0].transfer.allow_prefixes: \"44\" is not an E.164 prefix"), "{e}");
    let f = file("[[agents]]\nname = \"s\"\nurl = \"ws://x/y\"\n[agents.transfer]\nmax = 1\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("agents[0].transfer.max: unknown key"), "{e}");
}

#[test]
fn recording_is_off_by_default_and_each_agent_and_number_may_say_otherwise() {
    use crate::media::recording::{RecordFormat, RecordMode};
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(
        c.recording,
        RecordingConfig { record: RecordMode::Off, format: RecordFormat::Pcm16, retention_days: 0, url: None }
    );
    let e = Config::load(None, env(&[("VOCALS_RECORDING_URL", "https://bucket")])).unwrap_err().to_string();
    assert!(e.starts_with("recording.url:") && e.contains("s3://BUCKET"), "{e}");
    let c = Config::load(None, env(&[("VOCALS_RECORDING_URL", "s3://calls/vocals")])).unwrap();
    assert_eq!(c.recording.url.as_deref(), Some("s3://calls/vocals"));
    let c =
        Config::load(None, env(&[("VOCALS_RECORDING_RECORD", "dual"), ("VOCALS_RECORDING_FORMAT", "mulaw")])).unwrap();
    assert_eq!((c.recording.record, c.recording.format), (RecordMode::Dual, RecordFormat::Mulaw));
    let e = Config::load(None, env(&[("VOCALS_RECORDING_RECORD", "stereo")])).unwrap_err().to_string();
    assert!(e.starts_with("recording.record: \"stereo\" is not valid: expected off or dual"), "{e}");
    let f = file(
        "[[agents]]\nname = \"s\"\nurl = \"ws://x/y\"\nrecord = \"dual\"\n\
         [[numbers]]\nnumber = \"+14155550123\"\nagent = \"s\"\nrecord = \"off\"\n",
    );
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    assert_eq!((c.agents[0].record, c.numbers[0].record), (Some(RecordMode::Dual), Some(RecordMode::Off)));
    let f = file("[[numbers]]\nnumber = \"+14155550123\"\nrecord = \"yes\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("numbers[0].record:") && e.contains("off or dual"), "{e}");
}

#[test]
fn the_default_allowlist_is_twilios_edges_and_loopback() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(c.sip.allow, AllowList::default());
    let e = Config::load(None, env(&[("VOCALS_SIP_ALLOW", "10.0.0.0/33")])).unwrap_err().to_string();
    assert!(e.starts_with("sip.allow:"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_MEDIA_PUBLIC_IP", "0.0.0.0")])).unwrap_err().to_string();
    assert!(e.contains("not 0.0.0.0"), "{e}");
    let c = Config::load(None, env(&[("VOCALS_SIP_T1_MS", "50"), ("VOCALS_MEDIA_RTP_PORTS", "20000-20100")])).unwrap();
    assert_eq!(c.sip.timers.t1, Duration::from_millis(50));
    assert_eq!(c.media.rtp_ports, PortRange { first: 20000, last: 20100 });
}

#[test]
fn every_key_is_a_section_field_and_its_default_reads_back_as_the_default() {
    let defaults = Config::load(None, env(&[])).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (section, key, default) in KEYS.iter() {
        assert!(seen.insert(path(section, key)), "{section}.{key} twice");
        let name = format!("VOCALS_{}", path(section, key).replace('.', "_").to_ascii_uppercase());
        let c = Config::load(None, env(&[(&name, default)])).unwrap_or_else(|e| panic!("{name}={default:?}: {e}"));
        if *key == "default_agent" {
            // Set explicitly, "echo" answers always; the default is the demo (echo while no number exists).
            assert_eq!(c.default_agent, DefaultAgent::Agent("echo".into()));
            continue;
        }
        assert_eq!(c, defaults, "{name}={default:?}");
    }
    assert_eq!(seen.len(), 78, "the keys of config/vocals.toml");
    let first: Vec<String> = KEYS.iter().take(5).map(|(s, k, _)| path(s, k)).collect();
    assert_eq!(first, ["state_dir", "default_agent", "node", "sip.listen_udp", "sip.listen_tcp"]);
    // A key the section does not have is refused by its struct, and named with the keys there are.
    let e = Config::load(None, env(&[("VOCALS_MEDIA_LATCHES", "any")])).unwrap_err().to_string();
    assert!(e.starts_with("media.latches: unknown key (from VOCALS_MEDIA_LATCHES); known keys: state_dir, "), "{e}");
}

#[test]
fn the_components_take_the_sections_defaults() {
    let sip = SipConfig::default();
    assert_eq!(sip, Config::load(None, env(&[])).unwrap().sip);
    let endpoint = sip.endpoint();
    assert_eq!((endpoint.max_calls, endpoint.max_transactions, endpoint.limits), (1000, 400_000, Limits::default()));
    assert_eq!((endpoint.max_transaction_bytes, endpoint.timers), (64 << 20, Timers::default()));
    assert_eq!(sip.rate.exempt, AllowList::twilio());
    assert_eq!(sections::Sip::default().allow, AllowList::default());
}

#[test]
fn syntax_errors_name_the_file() {
    let f = file("[sip\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.contains("is not valid TOML"), "{e}");
}

#[test]
fn the_store_admin_token_and_node_come_from_the_environment_with_defaults() {
    let c = Config::load(None, env(&[("VOCALS_STATE_DIR", "/srv/v")])).unwrap();
    assert_eq!((c.store_url.as_str(), c.admin_token.as_deref()), ("sqlite:///srv/v/vocals.db", None));
    assert!(!c.node.is_empty());
    let c = Config::load(
        None,
        env(&[
            ("VOCALS_STORE_URL", "postgres://vocals:pw@db/vocals"),
            ("VOCALS_ADMIN_TOKEN", "0123456789abcdef"),
            ("VOCALS_NODE", "edge-1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.store_url, "postgres://vocals:pw@db/vocals");
    assert_eq!((c.admin_token.as_deref(), c.node.as_str()), (Some("0123456789abcdef"), "edge-1"));
    let e = Config::load(None, env(&[("VOCALS_STORE_URL", "mysql://x")])).unwrap_err().to_string();
    assert!(e.starts_with("store.url:") && e.contains("postgres://"), "{e}");
    let e = Config::load(None, env(&[("VOCALS_ADMIN_TOKEN", "short")])).unwrap_err().to_string();
    assert!(e.starts_with("admin.token:") && e.contains("16 characters") && !e.contains("short"), "{e}");
}

#[test]
fn the_shipped_config_file_documents_every_key_with_its_default() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/vocals.toml")).unwrap();
    for (section, key, default) in KEYS.iter() {
        let line = format!("# {key} = \"{default}\"");
        let number_line = format!("# {key} = {default}");
        assert!(text.contains(&line) || text.contains(&number_line), "config/vocals.toml lacks {section}.{key}");
    }
    // Loading the shipped file (everything commented) gives the defaults.
    let shipped = Config::load(Some(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/vocals.toml"))), env(&[]));
    assert_eq!(shipped.unwrap(), Config::load(None, env(&[])).unwrap());
}

/// A file in the system temp dir, removed on drop.
mod tempfile_like {
    pub struct File(std::path::PathBuf);
    impl File {
        pub fn new(text: &str) -> File {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "vocals-config-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&p, text).unwrap();
            File(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn default_agent_is_the_demo_unless_set_and_empty_refuses() {
    assert_eq!(Config::load(None, env(&[])).unwrap().default_agent, DefaultAgent::Demo);
    let set = |text: &str| Config::load(Some(file(text).path()), env(&[])).unwrap().default_agent;
    assert_eq!(set("default_agent = \"echo\"\n"), DefaultAgent::Agent("echo".into()), "set explicitly: always");
    assert_eq!(set("default_agent = \"\"\n"), DefaultAgent::Refuse);
    let c = Config::load(None, env(&[("VOCALS_DEFAULT_AGENT", "")])).unwrap();
    assert_eq!(c.default_agent, DefaultAgent::Refuse, "the environment sets it explicitly too");
    let c = Config::load(None, env(&[("VOCALS_DEFAULT_AGENT", "echo")])).unwrap();
    assert_eq!(c.default_agent, DefaultAgent::Agent("echo".into()));
}

#[test]
fn sip_accounts_is_the_known_ones_any_or_a_list_of_sids() {
    use crate::routing::AccountPolicy;
    assert_eq!(Config::load(None, env(&[])).unwrap().sip.accounts, AccountPolicy::Known);
    let c = Config::load(None, env(&[("VOCALS_SIP_ACCOUNTS", "any")])).unwrap();
    assert_eq!(c.sip.accounts, AccountPolicy::Any);
    let sid = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let c = Config::load(None, env(&[("VOCALS_SIP_ACCOUNTS", &format!("{sid}, "))])).unwrap();
    assert_eq!(c.sip.accounts, AccountPolicy::Only([sid.to_string()].into()));
    let e = Config::load(None, env(&[("VOCALS_SIP_ACCOUNTS", "AC123")])).unwrap_err().to_string();
    assert!(e.starts_with("sip.accounts: \"AC123\" is not valid"), "{e}");
}

#[test]
fn urls_are_shown_with_their_secrets_hidden() {
    for (url, shown) in [
        ("postgres://vocals:hunter2@db/vocals", "postgres://vocals:***@db/vocals"),
        (
            "postgres://vocals@db/vocals?sslmode=require&password=hunter2",
            "postgres://vocals@db/vocals?sslmode=require&password=***",
        ),
        ("wss://tok3n@agents.example.com/stream", "wss://***@agents.example.com/stream"),
        (
            "wss://agents.example.com/stream?token=abc&room=7&api_key=k",
            "wss://agents.example.com/stream?token=***&room=7&api_key=***",
        ),
        ("wss://agents.example.com/a@b", "wss://agents.example.com/a@b"),
        ("sqlite://./vocals-data/vocals.db", "sqlite://./vocals-data/vocals.db"),
    ] {
        assert_eq!(redact_url(url), shown);
    }
    let f = file("[[agents]]\nname = \"bot\"\nurl = \"wss://a.example/s?token=abc\"\nsecret = \"0123456789abcdef\"\n");
    let c = Config::load(Some(f.path()), env(&[])).unwrap().redacted();
    assert_eq!(c.agents[0].url, "wss://a.example/s?token=***");
    let f = file("[[agents]]\nname = \"bot\"\nurl = \"wss://a.example/s\"\nsecret = \"short\"\n");
    let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("agents[0].secret: 5 characters is too short"), "{e}");
}

#[test]
fn the_termination_auth_keys_read_into_their_type_and_refuse_what_twilio_or_the_other_key_would_not_take() {
    use crate::twilio::Ipv4Block;
    assert_eq!(Config::load(None, env(&[])).unwrap().termination, TerminationAuth::Credentials);
    let c = Config::load(
        None,
        env(&[
            ("VOCALS_OUTBOUND_TERMINATION_AUTH", "ip"),
            ("VOCALS_OUTBOUND_TERMINATION_IPS", "203.0.113.10, 198.51.100.0/30,"),
        ]),
    )
    .unwrap();
    let blocks = ["203.0.113.10", "198.51.100.0/30"].map(|b| Ipv4Block::parse(b).unwrap()).to_vec();
    assert_eq!(c.termination, TerminationAuth::Ip(blocks.clone()));
    // The file's form, the same.
    let f = file("[outbound]\ntermination_auth = \"ip\"\ntermination_ips = \"203.0.113.10, 198.51.100.0/30\"\n");
    assert_eq!(Config::load(Some(f.path()), env(&[])).unwrap().termination, TerminationAuth::Ip(blocks));
    let many: Vec<String> = (1..=101).map(|i| format!("203.0.{}.{}", i / 200, i % 200 + 1)).collect();
    let many = many.join(",");
    for (pairs, says) in [
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_AUTH", "ip")],
            "outbound.termination_ips: empty, but outbound.termination_auth is \"ip\"",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", "203.0.113.10")],
            "outbound.termination_ips: set, but outbound.termination_auth is \"credentials\"",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_AUTH", "digest")],
            "outbound.termination_auth: \"digest\" is not valid: expected credentials or ip",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", "203.0.113.10, 2001:db8::10")],
            "outbound.termination_ips: \"2001:db8::10\" is not valid: expected an IPv4 address: Twilio's IP access control lists take IPv4 only",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", "10.1.2.3")],
            "outbound.termination_ips: \"10.1.2.3\" is not valid: expected a public address, not a private address",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", "198.51.100.2/30")],
            "outbound.termination_ips: \"198.51.100.2/30\" is not valid: expected the block's first address, 198.51.100.0/30",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", "203.0.113.10, 203.0.113.10/32")],
            "outbound.termination_ips: \"203.0.113.10/32\" is not valid: expected each address once",
        ),
        (
            vec![("VOCALS_OUTBOUND_TERMINATION_IPS", many.as_str())],
            "outbound.termination_ips: 101 addresses: at most 100",
        ),
    ] {
        let e = Config::load(None, env(&pairs)).unwrap_err().to_string();
        assert!(e.starts_with(says), "{pairs:?}: {e}");
    }
    // With termination_auth = "ip" the other refusals come first, naming their key.
    let e = Config::load(
        None,
        env(&[("VOCALS_OUTBOUND_TERMINATION_AUTH", "ip"), ("VOCALS_OUTBOUND_TERMINATION_IPS", "[2001:db8::1]")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("outbound.termination_ips: \"[2001:db8::1]\" is not valid") && e.contains("IPv4 only"),
        "{e}"
    );
}

#[test]
fn outbound_keys_and_trunks_read_into_their_types_and_say_what_is_wrong() {
    let c = Config::load(
        None,
        env(&[
            ("VOCALS_OUTBOUND_PROXY", "127.0.0.1:5080"),
            ("VOCALS_OUTBOUND_CPS", "5"),
            ("VOCALS_OUTBOUND_EDGE", "dublin"),
        ]),
    )
    .unwrap();
    let proxy = c.outbound.proxy.as_ref().unwrap();
    assert_eq!((proxy.host.as_str(), proxy.port, c.outbound.cps), ("127.0.0.1", Some(5080), 5));
    assert_eq!(c.outbound.edge.as_deref(), Some("dublin"));
    assert_eq!(c.outbound.ring_timeout, Duration::from_secs(60));
    for (name, value, says) in [
        ("VOCALS_OUTBOUND_CPS", "31", "outbound.cps"),
        ("VOCALS_OUTBOUND_PROXY", "sip:x;transport=sctp", "outbound.proxy"),
        ("VOCALS_OUTBOUND_EDGE", "Dublin!", "outbound.edge"),
        ("VOCALS_OUTBOUND_RING_TIMEOUT", "1", "outbound.ring_timeout"),
    ] {
        let e = Config::load(None, env(&[(name, value)])).unwrap_err().to_string();
        assert!(e.starts_with(says), "{name}={value}: {e}");
    }
    let dir = std::env::temp_dir().join(format!("vocals-trunks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vocals.toml");
    let trunk = |extra: &str| {
        format!(
            "[[trunks]]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"0123456789abcdef0123\"\n\
             termination_uri = \"sip:acme.pstn.twilio.com\"\n{extra}"
        )
    };
    std::fs::write(&file, trunk("username = \"vocals\"\npassword = \"s3cret-s3cret\"\n")).unwrap();
    let c = Config::load(Some(&file), env(&[])).unwrap();
    assert_eq!(c.trunks.len(), 1);
    assert_eq!(c.trunks[0].termination.host, "acme.pstn.twilio.com");
    assert!(!format!("{:?}", c.trunks[0]).contains("s3cret"), "the password stays out of logs");
    for (extra, says) in
        [("username = \"vocals\"\n", "trunks[0].password"), ("region = \"us1\"\n", "trunks[0].region: unknown key")]
    {
        std::fs::write(&file, trunk(extra)).unwrap();
        let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(e.starts_with(says), "{extra}: {e}");
    }
    // A TLS trunk needs our TLS listener (its requests in the call come to it): refused at start without one,
    // not at each call; with a certificate and key it is taken.
    let tls_trunk = trunk("").replace("twilio.com\"", "twilio.com;transport=tls\"");
    std::fs::write(&file, &tls_trunk).unwrap();
    let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("trunks[0].termination_uri") && e.contains("sip.tls_cert"), "{e}");
    let with_tls = [("VOCALS_SIP_TLS_CERT", "/etc/vocals/cert.pem"), ("VOCALS_SIP_TLS_KEY", "/etc/vocals/key.pem")];
    let c = Config::load(Some(&file), env(&with_tls)).unwrap();
    assert_eq!(c.trunks[0].termination.transport, Transport::Tls);
    let no_listener = [with_tls[0], with_tls[1], ("VOCALS_SIP_LISTEN_TLS", "")];
    let e = Config::load(Some(&file), env(&no_listener)).unwrap_err().to_string();
    assert!(e.starts_with("trunks[0].termination_uri") && e.contains("sip.listen_tls"), "{e}");
    // The same for an outbound proxy over TCP without our TCP listener.
    std::fs::write(&file, trunk("")).unwrap();
    let tcp_proxy = [("VOCALS_OUTBOUND_PROXY", "sip:sbc.example.com;transport=tcp"), ("VOCALS_SIP_LISTEN_TCP", "")];
    let e = Config::load(Some(&file), env(&tcp_proxy)).unwrap_err().to_string();
    assert!(e.starts_with("outbound.proxy") && e.contains("sip.listen_tcp"), "{e}");
    assert!(Config::load(Some(&file), env(&tcp_proxy[..1])).is_ok());
    std::fs::write(&file, trunk("").replace("AC0123456789abcdef0123456789abcdef", "AC12")).unwrap();
    let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("trunks[0].account_sid"), "{e}");
    std::fs::write(&file, format!("{}{}", trunk(""), trunk(""))).unwrap();
    let e = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(e.starts_with("trunks[1].account_sid"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn call_traces_are_on_by_default_and_hep_takes_a_udp_collector_or_says_what_is_wrong() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!((c.log.call_trace, c.log.hep.clone(), c.log.hep_id), (true, None, 2001));
    let c = Config::load(
        None,
        env(&[
            ("VOCALS_LOG_HEP", "udp:[2001:db8::9]:9060"),
            ("VOCALS_LOG_HEP_ID", "7"),
            ("VOCALS_LOG_CALL_TRACE", "false"),
        ]),
    )
    .unwrap();
    assert_eq!(c.log.hep, Some(HepTarget { host: "2001:db8::9".into(), port: 9060 }));
    assert_eq!((c.log.hep_id, c.log.call_trace), (7, false));
    let c = Config::load(None, env(&[("VOCALS_LOG_HEP", "udp:homer.example.net:9060")])).unwrap();
    assert_eq!(c.log.hep, Some(HepTarget { host: "homer.example.net".into(), port: 9060 }));
    for (bad, why) in [
        ("tcp:homer:9060", "over UDP"),
        ("udp:homer", "port is missing"),
        ("udp:homer:0", "1-65535"),
        ("udp::9060", "name or an address"),
    ] {
        let e = Config::load(None, env(&[("VOCALS_LOG_HEP", bad)])).unwrap_err().to_string();
        assert!(e.starts_with("log.hep:") && e.contains(why), "{bad}: {e}");
    }
    let e = Config::load(None, env(&[("VOCALS_LOG_HEP_ID", "-1")])).unwrap_err().to_string();
    assert!(e.starts_with("log.hep_id:"), "{e}");
}

/// Issue 26: `[[numbers.rules]]` takes the API's rules, agents by name (`""`: not answered), and a mistake
/// names its key.
#[test]
fn numbers_take_routing_rules_in_the_file() {
    let f = file(
        "[[agents]]\nname = \"night\"\nurl = \"ws://127.0.0.1:8765/stream\"\n\
         [[numbers]]\nnumber = \"+14155550123\"\nagent = \"echo\"\n\
         [[numbers.rules]]\nwhen = { zone = \"America/New_York\", days = [\"mon\", \"fri\"], from = 18:00, to = \"08:00\" }\n\
         agent = \"night\"\n\
         [[numbers.rules]]\ncaller = \"anonymous\"\nagent = \"\"\n",
    );
    let c = Config::load(Some(f.path()), env(&[])).unwrap();
    assert_eq!(
        c.numbers[0].rules,
        serde_json::json!([
            {"when": {"zone": "America/New_York", "days": ["mon", "fri"], "from": "18:00", "to": "08:00"}, "agent_id": "night"},
            {"caller": "anonymous", "agent_id": null}
        ])
    );
    let cases = [
        ("when = { zone = \"Nowhere/Land\" }\nagent = \"echo\"\n", "numbers[0].rules[0].when.zone:"),
        ("caller = \"+44\"\nagent = \"sales\"\n", "numbers[0].rules[0].agent:"),
        ("caller = \"+44\"\n", "numbers[0].rules[0].agent:"),
    ];
    for (rule, key) in cases {
        let f = file(&format!("[[numbers]]\nnumber = \"+14155550123\"\n[[numbers.rules]]\n{rule}"));
        let e = Config::load(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(e.starts_with(key), "{rule}: {e}");
    }
}
