//! The docs check: `README.md` and every `docs/*.md` name only what exists. Config keys (a backticked
//! `section.key` of a real section, a backticked `[section]`, a `VOCALS_*` variable, the keys of TOML code
//! blocks) must be in `vocals::config::KEYS`; relative links must reach a file, and a `#anchor` into a Markdown
//! file one of its headings (GitHub's slugs); every `vocals <command>` in a shell block or inline code must be a
//! command of the built binary, as its `--help` lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use vocals::config::KEYS;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Tables a config file may have besides `KEYS`' sections: the entries `config/file.rs` reads.
const ENTRY_TABLES: &[&str] =
    &["[[numbers]]", "[[numbers.rules]]", "[[agents]]", "[agents.parameters]", "[agents.transfer]", "[[trunks]]"];

/// Code-block languages whose lines are shell commands.
const SHELL: &[&str] = &["", "sh", "bash", "shell", "console"];

/// What the documents may name: the config keys and the binary's commands.
struct Known {
    /// `section.key`, and top-level keys bare.
    keys: BTreeSet<String>,
    /// Sections with keys (`sip`, `media`, …), without the top level.
    sections: BTreeSet<String>,
    /// Each command of `vocals`, with its subcommands (empty for a leaf).
    commands: BTreeMap<String, BTreeSet<String>>,
}

impl Known {
    fn load() -> Known {
        let keys = KEYS.iter().map(|(s, k, _)| if s.is_empty() { k.to_string() } else { format!("{s}.{k}") }).collect();
        let sections = KEYS.iter().map(|(s, _, _)| s.to_string()).filter(|s| !s.is_empty()).collect();
        let mut commands = BTreeMap::new();
        for command in help_commands(&[]) {
            let subcommands = help_commands(&[&command]);
            commands.insert(command, subcommands);
        }
        assert!(commands.contains_key("serve"), "`vocals --help` lists no serve command: {commands:?}");
        Known { keys, sections, commands }
    }
}

/// The commands `vocals ARGS --help` lists under "Commands:" (its own `help` left out).
fn help_commands(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vocals")).args(args).arg("--help").output().expect("run vocals --help");
    assert!(out.status.success(), "vocals {args:?} --help failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Lines of a code block, with their line numbers in the document.
type Lines = Vec<(usize, String)>;

/// One Markdown document, split into what the checks read.
struct Doc {
    /// The text outside code blocks, code blocks blanked (line numbers kept).
    prose: String,
    /// Each code block: its language, and its lines with their line numbers.
    blocks: Vec<(String, Lines)>,
}

impl Doc {
    fn parse(text: &str) -> Doc {
        let mut prose = String::new();
        let mut blocks = Vec::new();
        // The open block: its fence, its language and its lines.
        let mut open: Option<(&str, String, Lines)> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            let fence = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
            let closes =
                matches!((&open, fence), (Some((f, _, _)), Some(g)) if *f == g && trimmed[3..].trim().is_empty());
            match (&mut open, fence) {
                _ if closes => {
                    if let Some((_, lang, lines)) = open.take() {
                        blocks.push((lang, lines));
                    }
                }
                (None, Some(f)) => open = Some((f, trimmed[3..].trim().to_string(), Vec::new())),
                (Some((_, _, lines)), _) => lines.push((i + 1, line.to_string())),
                (None, None) => prose.push_str(line),
            }
            prose.push('\n');
        }
        if let Some((_, lang, lines)) = open {
            blocks.push((lang, lines));
        }
        Doc { prose, blocks }
    }

    /// Inline code spans of the prose: their line, where they are (backticks included) and what they hold
    /// (a span may run over a line break).
    fn code_spans(&self) -> Vec<(usize, std::ops::Range<usize>, String)> {
        let bytes = self.prose.as_bytes();
        let run = |at: usize| bytes[at..].iter().take_while(|&&b| b == b'`').count();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'`' {
                i += 1;
                continue;
            }
            let n = run(i);
            // The closing run is the next one of the same length (CommonMark).
            let mut j = i + n;
            let mut end = None;
            while j < bytes.len() {
                let m = run(j);
                match m {
                    0 => j += 1,
                    m if m == n => {
                        end = Some(j);
                        break;
                    }
                    m => j += m,
                }
            }
            let Some(end) = end else {
                i += n;
                continue;
            };
            let line = 1 + self.prose[..i].matches('\n').count();
            spans.push((line, i..end + n, self.prose[i + n..end].replace('\n', " ").trim().to_string()));
            i = end + n;
        }
        spans
    }

    /// The prose with its code spans blanked, for finding links outside code.
    fn prose_without_code(&self) -> String {
        let mut out = self.prose.clone().into_bytes();
        for (_, range, _) in self.code_spans() {
            for b in &mut out[range] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        String::from_utf8(out).expect("only ASCII backticks and their contents were blanked, whole")
    }

    /// GitHub's anchors of the document's headings.
    fn anchors(&self) -> BTreeSet<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut anchors = BTreeSet::new();
        for line in self.prose.lines() {
            let hashes = line.bytes().take_while(|&b| b == b'#').count();
            if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
                continue;
            }
            let slug = slug(&line[hashes..]);
            let count = seen.entry(slug.clone()).or_insert(0);
            anchors.insert(if *count == 0 { slug.clone() } else { format!("{slug}-{count}") });
            *count += 1;
        }
        anchors
    }
}

/// GitHub's heading anchor: lowercase, every character but letters, digits, `-`, `_` and spaces dropped,
/// spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Everything wrong in the document `name` (a path relative to the repository), as `name:line: what` lines.
fn check(name: &str, text: &str, known: &Known) -> Vec<String> {
    let doc = Doc::parse(text);
    let mut problems = Vec::new();
    let mut say = |line: usize, what: String| problems.push(format!("{name}:{line}: {what}"));
    for (line, _, span) in doc.code_spans() {
        for what in config_tokens(&span, known).into_iter().chain(commands(&span, known)) {
            say(line, what);
        }
    }
    for (lang, lines) in &doc.blocks {
        if lang == "toml" {
            for (line, what) in toml_keys(lines, known) {
                say(line, what);
            }
        }
        for (line, text) in lines {
            let mut found: Vec<String> = env_vars(text, known);
            if SHELL.contains(&lang.as_str()) {
                found.extend(commands(text, known));
            }
            for what in found {
                say(*line, what);
            }
        }
    }
    let dir = Path::new(ROOT).join(name).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(ROOT));
    let prose = doc.prose_without_code();
    for (line, target) in links(&prose) {
        if let Some(what) = broken_link(&target, &dir, &doc) {
            say(line, what);
        }
    }
    problems
}

/// Config keys named in an inline code span: `section.key` of a known section, `[section]`, `VOCALS_*`.
fn config_tokens(span: &str, known: &Known) -> Vec<String> {
    let mut problems = env_vars(span, known);
    // `[name]` is a config section when it is one lowercase word (`[package.metadata.deb]` is Cargo's).
    let section = span.strip_prefix('[').and_then(|s| s.strip_suffix(']')).map(|s| s.trim_matches(['[', ']']));
    if let Some(section) = section
        && !section.is_empty()
        && section.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        && !known.sections.contains(section)
        && !ENTRY_TABLES.contains(&span)
    {
        problems.push(format!("no config section {span}"));
    }
    let chars: Vec<char> = span.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !(word(chars[i - 1]) || matches!(chars[i - 1], '.' | '-' | '/' | '@' | ':' | '$'));
        if !boundary || !chars[i].is_ascii_lowercase() {
            i += 1;
            continue;
        }
        let end = (i..chars.len()).find(|&j| !(word(chars[j]) || chars[j] == '.')).unwrap_or(chars.len());
        let token: String = chars[i..end].iter().collect();
        let after = chars.get(end).copied();
        let standalone = !matches!(after, Some('-' | '/' | '@' | '*'));
        if let Some((section, key)) = token.split_once('.')
            && standalone
            && known.sections.contains(section)
            && !key.contains('.')
            && !key.is_empty()
            && !known.keys.contains(&token)
        {
            problems.push(format!("no config key `{token}` (see config/vocals.toml)"));
        }
        i = end;
    }
    problems
}

/// `VOCALS_<SECTION>_<KEY>` variables, read the way the server reads them.
fn env_vars(text: &str, known: &Known) -> Vec<String> {
    let mut problems = Vec::new();
    for (at, _) in text.match_indices("VOCALS_") {
        if at > 0 && text.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest: String =
            text[at + 7..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        let rest = rest.trim_end_matches('_').to_ascii_lowercase();
        if rest.is_empty() || rest == "config" {
            continue;
        }
        let key = if known.keys.contains(&rest) {
            rest.clone()
        } else {
            rest.split_once('_').map(|(s, k)| format!("{s}.{k}")).unwrap_or_default()
        };
        if !known.keys.contains(&key) {
            problems.push(format!("VOCALS_{} names no config key", rest.to_ascii_uppercase()));
        }
    }
    problems
}

/// The keys of a TOML code block: top-level ones and those of `KEYS`' sections must exist; entry tables
/// (`[[numbers]]`, `[[agents]]` …) are the config file reader's.
fn toml_keys(lines: &[(usize, String)], known: &Known) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut table: Option<String> = Some(String::new());
    for (n, line) in lines {
        let line = line.split(" #").next().unwrap_or_default().trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let header = line.split_whitespace().next().unwrap_or_default();
            let name = header.trim_matches(|c| c == '[' || c == ']');
            table = if known.sections.contains(name) && !header.starts_with("[[") {
                Some(name.to_string())
            } else if ENTRY_TABLES.contains(&header) {
                None
            } else {
                problems.push((*n, format!("no config section {header}")));
                None
            };
            continue;
        }
        let (Some(section), Some((key, _))) = (&table, line.split_once('=')) else { continue };
        let key = key.trim();
        let full = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
        if !known.keys.contains(&full) {
            problems.push((*n, format!("no config key `{full}` (see config/vocals.toml)")));
        }
    }
    problems
}

/// Every `vocals <command> [<subcommand>]` in a shell line or inline code must be one of the binary's.
fn commands(text: &str, known: &Known) -> Vec<String> {
    let text = if text.trim_start().starts_with('#') { "" } else { text.split(" #").next().unwrap_or_default() };
    let mut problems = Vec::new();
    for segment in text.split(['|', ';', '&', '(']) {
        let mut words = segment.split_whitespace().skip_while(|w| *w == "env" || w.starts_with('-') || w.contains('='));
        let Some(first) = words.next() else { continue };
        if first.rsplit('/').next() != Some("vocals") {
            continue;
        }
        let is_name = |w: &&str| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-');
        let Some(command) = words.next().filter(is_name) else { continue };
        match known.commands.get(command) {
            None => problems.push(format!("`vocals {command}`: no such command (vocals --help)")),
            Some(subcommands) if !subcommands.is_empty() => {
                if let Some(sub) = words.next().filter(is_name)
                    && !subcommands.contains(sub)
                {
                    problems.push(format!("`vocals {command} {sub}`: no such command (vocals {command} --help)"));
                }
            }
            Some(_) => {}
        }
    }
    problems
}

/// The targets of `[text](target)` and `![alt](target)` links, with their line numbers.
fn links(prose: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (at, _) in prose.match_indices("](") {
        let rest = &prose[at + 2..];
        let Some(close) = rest.find(')') else { continue };
        let target = rest[..close].split_whitespace().next().unwrap_or_default();
        found.push((1 + prose[..at].matches('\n').count(), target.trim_matches(|c| c == '<' || c == '>').to_string()));
    }
    found
}

/// Why a link does not resolve, if it does not: the file, and for a Markdown file the anchor.
fn broken_link(target: &str, dir: &Path, doc: &Doc) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link".into());
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    if path.contains("shared/") {
        return Some(format!("{target}: links outside the repository"));
    }
    let anchors = if path.is_empty() {
        doc.anchors()
    } else {
        let file = dir.join(path);
        if !file.exists() {
            return Some(format!("{target}: no file {}", file.display()));
        }
        match (anchor, std::fs::read_to_string(&file)) {
            (Some(_), Ok(text)) if path.ends_with(".md") => Doc::parse(&text).anchors(),
            _ => return None,
        }
    };
    match anchor {
        Some(anchor) if !anchors.contains(anchor) => Some(format!(
            "{target}: no heading #{anchor} (headings: {})",
            anchors.into_iter().collect::<Vec<_>>().join(", ")
        )),
        _ => None,
    }
}

/// README.md and docs/*.md, as paths relative to the repository.
fn documents() -> Vec<String> {
    let mut names = vec!["README.md".to_string()];
    let docs = Path::new(ROOT).join("docs");
    let mut more: Vec<String> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("{}: {e}", docs.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    more.sort();
    names.extend(more);
    names
}

#[test]
fn the_readme_and_the_guides_name_only_keys_links_and_commands_that_exist() {
    let known = Known::load();
    let names = documents();
    assert!(names.len() >= 5, "README.md and the four guides in docs/: {names:?}");
    let mut problems = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(Path::new(ROOT).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        problems.extend(check(name, &text, &known));
    }
    assert!(problems.is_empty(), "the docs name what does not exist:\n{}", problems.join("\n"));
}

#[test]
fn the_check_flags_a_made_up_key_a_broken_link_and_a_command_that_does_not_exist() {
    let known = Known::load();
    let text = "# A guide\n\n## Ports and keys\n\n\
                Set `sip.public_host` and `media.no_such_key`, in `[media]` or `[nosuchsection]`, or\n\
                `VOCALS_SIP_NOPE`; `vocals.toml`, `sip-tests/media.rs` and `sip:+1@twilio.com` are no keys.\n\
                See [ports](#ports-and-keys), [gone](#no-such-heading), [telecom](telecom.md#who-may-call),\n\
                [missing](missing.md) and [a heading that is not there](telecom.md#nowhere).\n\n\
                ```toml\n[sip]\npublic_host = \"x\"\nnot_a_key = 1\n[[numbers]]\nnumber = \"+1\"\n```\n\n\
                ```sh\nvocals numbers add +14155550123 --agent echo\nvocals frobnicate --now\n\
                vocals numbers frob +1\nsudo -u vocals sqlite3 x  # not vocals' command\n```\n";
    let problems = check("docs/example.md", text, &known);
    let expected = [
        "no config key `media.no_such_key`",
        "no config section [nosuchsection]",
        "VOCALS_SIP_NOPE names no config key",
        "#no-such-heading: no heading",
        "missing.md: no file",
        "telecom.md#nowhere: no heading #nowhere",
        "no config key `sip.not_a_key`",
        "`vocals frobnicate`: no such command",
        "`vocals numbers frob`: no such command",
    ];
    for what in expected {
        assert!(problems.iter().any(|p| p.contains(what)), "{what:?} not flagged in:\n{}", problems.join("\n"));
    }
    assert_eq!(problems.len(), expected.len(), "only these are wrong:\n{}", problems.join("\n"));
}

#[test]
fn anchors_follow_githubs_slugs() {
    let doc = Doc::parse(
        "# Secure trunking: SIP over TLS and SRTP\n## Twilio's address ranges\n## `vocals` CLI\n## Ports\n## Ports\n```sh\n# not a heading\n```\n",
    );
    let anchors: Vec<String> = doc.anchors().into_iter().collect();
    assert_eq!(
        anchors,
        ["ports", "ports-1", "secure-trunking-sip-over-tls-and-srtp", "twilios-address-ranges", "vocals-cli"]
    );
}
