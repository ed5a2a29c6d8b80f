//! Known values: which environment variables hold secrets, every form of their values (raw,
//! viewed, JSON-escaped, base64 at each alignment), and the index that finds them and their
//! fragments at line boundaries (short ones by the scanning automaton, long ones by sampled
//! 8-byte windows behind a bloom filter).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use aho_corasick::AhoCorasick;

use super::patterns::{build_scan, TRIGGER_SCAN};
use super::view::View;
use super::{Hit, Label, Redactor, FRAGMENT_MIN, MAX_KNOWN_LEN, MIN_KNOWN_LEN};

/// Upper-case words that make a variable's value a secret when its name contains them.
const NAME_WORDS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "BEARER",
    "COOKIE",
    "SIGNING",
    "WEBHOOK",
    "PRIVATE",
];

/// Upper-case name segments (between `_`, `-` or `.`) that make a variable's value a secret:
/// segments only, so that `PAT` (a personal access token: `GITHUB_PAT`, `MY_PAT_TOKEN`) does not
/// catch `PATH` or `PATCH`.
const NAME_SEGMENTS: &[&str] = &["PASS", "PWD", "PW", "PAT"];

/// Last name segments of variables that name *about* a secret, not the secret itself
/// (`GITHUB_TOKEN_FILE`, `SSH_AUTH_SOCK`, `AWS_ACCESS_KEY_ID`, `OAUTH_TOKEN_URL` …).
const NOT_SECRET_LAST_SEGMENTS: &[&str] = &[
    "FILE", "PATH", "DIR", "SOCK", "SOCKET", "HOST", "PORT", "USER", "USERNAME", "NAME", "EMAIL",
    "URL", "ENDPOINT", "ID", "TYPE", "MODE", "METHOD", "PROVIDER", "REGION", "DOMAIN", "ISSUER",
    "AUDIENCE", "SCOPE", "SCOPES", "TIMEOUT", "TTL", "EXPIRY", "LENGTH", "SIZE", "ENABLED",
    "FORMAT", "VERSION", "HELPER", "COMMAND", "CMD",
];

/// Whether the value of the environment variable `name` is treated as a secret.
///
/// Case-insensitive. Yes when the name contains `KEY`, `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`,
/// `PASSPHRASE`, `CREDENTIAL`, `BEARER`, `COOKIE`, `SIGNING`, `WEBHOOK`, `PRIVATE` or `AUTH`
/// (but not `AUTHOR`: `GIT_AUTHOR_NAME` is not a secret), or has a segment `PASS`, `PWD`, `PW`
/// or `PAT` (`DB_PASS`, `MYSQL_PWD`, `GITHUB_PAT`; not `PWD`/`OLDPWD`, the working directory,
/// nor `GIT_ASKPASS`, nor `PATH`); no when its last segment says it names something *about* a
/// secret: `_FILE`, `_PATH`, `_DIR`, `_SOCK`, `_URL`, `_ID`, `_HOST`, `_USER`, `_TYPE`,
/// `_TIMEOUT` … (`GITHUB_TOKEN_FILE`, `SSH_AUTH_SOCK`, `AWS_ACCESS_KEY_ID`, whose value the
/// `AKIA…` pattern covers anyway) — except that a webhook's URL is its secret
/// (`SLACK_WEBHOOK_URL`).
pub fn is_secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    if up == "PWD" || up == "OLDPWD" {
        return false;
    }
    let segments: Vec<&str> = up
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect();
    if segments.len() > 1 {
        if let Some(last) = segments.last() {
            let webhook_url = up.contains("WEBHOOK") && matches!(*last, "URL" | "ENDPOINT");
            if NOT_SECRET_LAST_SEGMENTS.contains(last) && !webhook_url {
                return false;
            }
        }
    }
    let auth = up.contains("AUTH") && (!up.contains("AUTHOR") || up.contains("AUTHORI"));
    auth || NAME_WORDS.iter().any(|w| up.contains(w))
        || segments.iter().any(|s| NAME_SEGMENTS.contains(s))
}

/// A [`StreamRedactor`](super::StreamRedactor) holds back a line's end until the next line arrives when the line ends
/// with at least this many bytes of the start of a known value (or of one of its encodings).
const HOLD_MIN: usize = 4;

/// Known values at least this long are found by sampling (see [`Inner::grams`]); shorter ones
/// by the scanning automaton.
const LONG_NEEDLE: usize = 24;

/// Sampling stride: every needle of [`LONG_NEEDLE`] bytes or more has a whole 8-byte window
/// starting at a multiple of it.
pub(super) const STRIDE: usize = LONG_NEEDLE - 8 + 1;

const BLOOM_BITS: u32 = 16;

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 without padding.
fn base64_encode(data: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    out
}

/// The base64 characters determined by `value` alone when it starts `offset` (0..3) bytes into
/// a base64 stream, and whether a partial character precedes/follows them.
fn base64_core(value: &[u8], offset: usize, alphabet: &[u8; 64]) -> (Vec<u8>, bool, bool) {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(value);
    buf.extend_from_slice(&[0, 0]);
    let enc = base64_encode(&buf, alphabet);
    let start_bits = 8 * offset;
    let end_bits = 8 * (offset + value.len());
    let first = start_bits.div_ceil(6);
    let last = end_bits / 6;
    let core = enc.get(first..last).map(<[u8]>::to_vec).unwrap_or_default();
    (
        core,
        !start_bits.is_multiple_of(6),
        !end_bits.is_multiple_of(6),
    )
}

/// The value as `JSON.stringify`/serde_json write it inside a string (without the quotes).
fn json_escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    for &b in raw {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Values at most this long are also matched split in two by one space, at every position
/// (one needle per position: longer values would cost too much memory; a split of a longer
/// value leaves halves the fragment rule does not see).
pub(super) const MAX_SPLIT_LEN: usize = 64;

/// The other spellings of a value an agent can print with a shell one-liner (`xxd -p`,
/// `od`, `sed 's/./& /g'`, a value broken by one space): hex in lower and upper case, hex with
/// a space between bytes, the characters with a space between each, and the value split in two
/// by one space.
fn spelled_forms(raw: &[u8]) -> Vec<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex: Vec<u8> = raw
        .iter()
        .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .collect();
    let mut forms = vec![hex.to_ascii_uppercase()];
    let hex_spaced: Vec<u8> = hex
        .chunks(2)
        .flat_map(|pair| [b' ', pair[0], pair[1]])
        .skip(1)
        .collect();
    forms.push(hex);
    forms.push(hex_spaced);
    let spaced: Vec<u8> = raw.iter().flat_map(|&b| [b' ', b]).skip(1).collect();
    forms.push(spaced);
    if raw.len() <= MAX_SPLIT_LEN && !raw.contains(&b' ') {
        for at in 1..raw.len() {
            let mut split = Vec::with_capacity(raw.len() + 1);
            split.extend_from_slice(&raw[..at]);
            split.push(b' ');
            split.extend_from_slice(&raw[at..]);
            forms.push(split);
        }
    }
    forms
}

fn is_b64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

#[derive(Debug)]
pub(super) struct Needle {
    pub(super) bytes: Vec<u8>,
    secret: u32,
    /// A base64 form: extend a match over a partial character before/after it and `=` padding.
    lead_partial: bool,
    trail_partial: bool,
    base64: bool,
    /// Fragment length for the line-boundary rule.
    frag: usize,
}

fn fragment_len(len: usize) -> usize {
    len.saturating_sub(3).clamp(5, FRAGMENT_MIN)
}

/// Cheap hasher for the fragment map's `u64` keys (keys are packed bytes, not attacker-chosen
/// in a way that matters: a collision only costs a comparison).
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FragMap = HashMap<u64, Vec<(u32, u32)>, BuildHasherDefault<FastHasher>>;

pub(super) fn pack(bytes: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    let n = bytes.len().min(8);
    k[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(k)
}

pub(super) struct Inner {
    pub(super) names: Vec<String>,
    pub(super) needles: Vec<Needle>,
    /// Triggers, then the short needles (pattern `TRIGGERS.len() + i` is needle `short[i]`).
    pub(super) scan: Option<AhoCorasick>,
    pub(super) short: Vec<u32>,
    /// Every 8-byte window of every long needle → (needle, offset); probed every [`STRIDE`]
    /// bytes, behind a bloom filter of the windows.
    grams: FragMap,
    pub(super) bloom: Vec<u64>,
    /// For each fragment length 5..=8 (index `len - 5`): every window of that length of every
    /// needle using it → (needle, offset).
    frags: [FragMap; 4],
    /// Every [`HOLD_MIN`]-byte window of every needle.
    quads: HashSet<u64, BuildHasherDefault<FastHasher>>,
    pub(super) max_needle: usize,
}

pub(super) fn bloom_index(gram: u64) -> usize {
    (gram.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BLOOM_BITS)) as usize
}

impl Redactor {
    pub(super) fn from_secrets(pairs: Vec<(String, String)>) -> Redactor {
        let mut names: Vec<String> = Vec::new();
        let mut needles: Vec<Needle> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (name, value) in pairs {
            let mut cut = value.len().min(MAX_KNOWN_LEN);
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            let raw = value.as_bytes()[..cut].to_vec();
            let secret = names.len() as u32;
            let mut added = false;
            let mut add = |bytes: Vec<u8>, lead: bool, trail: bool, base64: bool| {
                if bytes.len() < MIN_KNOWN_LEN || !seen.insert(bytes.clone()) {
                    return;
                }
                let frag = fragment_len(bytes.len());
                needles.push(Needle {
                    bytes,
                    secret,
                    lead_partial: lead,
                    trail_partial: trail,
                    base64,
                    frag,
                });
                added = true;
            };
            // The view decodes escapes and drops line breaks: match the value as the view shows
            // it, and as is (for text the view leaves alone).
            let viewed = View::build(&raw).bytes.into_owned();
            if viewed != raw {
                add(viewed, false, false, false);
            }
            // The view decodes one level of escapes: JSON inside a JSON string still shows the
            // value escaped once.
            let escaped = json_escape(&raw);
            if escaped != raw {
                add(escaped, false, false, false);
            }
            if raw.contains(&b' ') {
                let plus: Vec<u8> = raw
                    .iter()
                    .map(|&b| if b == b' ' { b'+' } else { b })
                    .collect();
                add(plus, false, false, false);
            }
            add(raw.clone(), false, false, false);
            for form in spelled_forms(&raw) {
                add(form, false, false, false);
            }
            for alphabet in [B64_STD, B64_URL] {
                for offset in 0..3 {
                    let (core, lead, trail) = base64_core(&raw, offset, alphabet);
                    add(core, lead, trail, true);
                }
            }
            if added {
                names.push(name);
            }
        }
        let short: Vec<u32> = (0..needles.len() as u32)
            .filter(|&i| needles[i as usize].bytes.len() < LONG_NEEDLE)
            .collect();
        let scan = if short.is_empty() {
            TRIGGER_SCAN.clone()
        } else {
            build_scan(short.iter().map(|&i| needles[i as usize].bytes.as_slice()))
        };
        let mut grams = FragMap::default();
        let mut bloom = Vec::new();
        for (i, n) in needles.iter().enumerate() {
            if n.bytes.len() < LONG_NEEDLE {
                continue;
            }
            if bloom.is_empty() {
                bloom = vec![0u64; (1 << BLOOM_BITS) / 64];
            }
            for off in 0..=(n.bytes.len() - 8) {
                let g = pack(&n.bytes[off..off + 8]);
                let b = bloom_index(g);
                bloom[b / 64] |= 1 << (b % 64);
                grams.entry(g).or_default().push((i as u32, off as u32));
            }
        }
        let mut frags: [FragMap; 4] = Default::default();
        for (i, n) in needles.iter().enumerate() {
            let f = n.frag;
            let map = &mut frags[f - 5];
            for off in 0..=(n.bytes.len() - f) {
                map.entry(pack(&n.bytes[off..off + f]))
                    .or_default()
                    .push((i as u32, off as u32));
            }
        }
        let quads = needles
            .iter()
            .flat_map(|n| n.bytes.windows(HOLD_MIN).map(pack))
            .collect();
        let max_needle = needles.iter().map(|n| n.bytes.len()).max().unwrap_or(0);
        Redactor {
            inner: Arc::new(Inner {
                names,
                needles,
                scan,
                short,
                grams,
                bloom,
                frags,
                quads,
                max_needle,
            }),
        }
    }

    /// The long needles whose window `g` is at view offset `p`.
    #[cold]
    pub(super) fn probe(&self, view: &View<'_>, p: usize, g: u64, hits: &mut Vec<Hit>) {
        let inner = &*self.inner;
        let v: &[u8] = &view.bytes;
        let Some(cands) = inner.grams.get(&g) else {
            return;
        };
        for &(ni, off) in cands {
            let Some(n) = inner.needles.get(ni as usize) else {
                continue;
            };
            let Some(s) = p.checked_sub(off as usize) else {
                continue;
            };
            let e = s + n.bytes.len();
            if e <= v.len() && v[s..e] == n.bytes {
                let dup = hits.last().is_some_and(|h: &Hit| {
                    h.label == Label::Known(n.secret) && h.start == view.map_start(s)
                });
                if !dup {
                    self.push_known(view, ni, s, e, hits);
                }
            }
        }
    }

    /// A known needle at view offsets `s..e`, extended over the partial base64 characters
    /// and padding around it.
    pub(super) fn push_known(
        &self,
        view: &View<'_>,
        ni: u32,
        s: usize,
        e: usize,
        hits: &mut Vec<Hit>,
    ) {
        let Some(n) = self.inner.needles.get(ni as usize) else {
            return;
        };
        let v: &[u8] = &view.bytes;
        let (mut s, mut e) = (s, e);
        if n.base64 {
            if n.lead_partial && s > 0 && is_b64_byte(v[s - 1]) {
                s -= 1;
            }
            if n.trail_partial && e < v.len() && is_b64_byte(v[e]) {
                e += 1;
            }
            let mut pad = 0;
            while pad < 2 && e < v.len() && v[e] == b'=' {
                e += 1;
                pad += 1;
            }
        }
        hits.push(Hit {
            start: view.map_start(s),
            end: view.map_end(e),
            label: Label::Known(n.secret),
            cont: None,
        });
    }

    /// Fragments of known values ending or starting at view offset `b` (a line boundary).
    pub(super) fn fragments_at(&self, view: &View<'_>, b: usize, hits: &mut Vec<Hit>) {
        let inner = &*self.inner;
        let v: &[u8] = &view.bytes;
        for (fi, map) in inner.frags.iter().enumerate() {
            if map.is_empty() {
                continue;
            }
            let f = fi + 5;
            // A prefix of a needle ending at b.
            if b >= f {
                if let Some(cands) = map.get(&pack(&v[b - f..b])) {
                    for &(ni, off) in cands {
                        let Some(n) = inner.needles.get(ni as usize) else {
                            continue;
                        };
                        let k = off as usize + f;
                        if k <= b && v[b - k..b] == n.bytes[..k] {
                            hits.push(Hit {
                                start: view.map_start(b - k),
                                end: view.map_end(b),
                                label: Label::Known(n.secret),
                                cont: None,
                            });
                        }
                    }
                }
            }
            // A suffix of a needle starting at b.
            if b + f <= v.len() {
                if let Some(cands) = map.get(&pack(&v[b..b + f])) {
                    for &(ni, off) in cands {
                        let Some(n) = inner.needles.get(ni as usize) else {
                            continue;
                        };
                        let rest = &n.bytes[off as usize..];
                        if v.len() - b >= rest.len() && &v[b..b + rest.len()] == rest {
                            hits.push(Hit {
                                start: view.map_start(b),
                                end: view.map_end(b + rest.len()),
                                label: Label::Known(n.secret),
                                cont: None,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The view offset where the longest (≥ [`HOLD_MIN`]) suffix of `v[..b]` that is a proper
    /// prefix of a needle starts.
    pub(super) fn needle_prefix_before(&self, v: &[u8], b: usize) -> Option<usize> {
        // Such a prefix ends with 4 bytes of some needle: most lines end otherwise.
        let last4 = v.get(b.checked_sub(HOLD_MIN)?..b)?;
        if !self.inner.quads.contains(&pack(last4)) {
            return None;
        }
        let mut best: Option<usize> = None;
        for n in &self.inner.needles {
            let maxk = (n.bytes.len() - 1).min(b);
            if maxk < HOLD_MIN {
                continue;
            }
            let window = &v[b - maxk..b];
            let first = n.bytes[0];
            for s in memchr::memchr_iter(first, &window[..=maxk - HOLD_MIN]) {
                let k = maxk - s;
                if window[s..] == n.bytes[..k] {
                    let at = b - k;
                    best = Some(best.map_or(at, |x: usize| x.min(at)));
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::contains;
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "ANTHROPIC_API_KEY",
            "openai_api_key",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "PGPASSWORD",
            "DB_PASS",
            "MYSQL_PWD",
            "SMTP_PASSWD",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "HTTP_AUTHORIZATION",
            "SSH_PASSPHRASE",
            "GITHUB_PAT",
            "MY_PAT_TOKEN",
            "AZURE_DEVOPS_PAT",
            "PAT",
            "API_BEARER",
            "SESSION_COOKIE",
            "APP_SIGNING_SALT",
            "SLACK_WEBHOOK",
            "SLACK_WEBHOOK_URL",
            "DEPLOY_AUTH",
            "SOME_CREDENTIAL",
            "DEPLOY_PRIVATE",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PATH",
            "HOME",
            "PWD",
            "OLDPWD",
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "SSH_AUTH_SOCK",
            "GITHUB_TOKEN_FILE",
            "AWS_ACCESS_KEY_ID",
            "GIT_ASKPASS",
            "OAUTH_TOKEN_URL",
            "PASSWORD_STORE_DIR",
            "LANG",
            "LD_LIBRARY_PATH",
            "PATCH_LEVEL",
            "DISPATCH_MODE",
            "COOKIE_DOMAIN",
            "PRIVATE_KEY_PATH",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn base64_matches_std() {
        assert_eq!(base64_encode(b"", B64_STD), b"");
        assert_eq!(base64_encode(b"f", B64_STD), b"Zg");
        assert_eq!(base64_encode(b"fo", B64_STD), b"Zm8");
        assert_eq!(base64_encode(b"foo", B64_STD), b"Zm9v");
        assert_eq!(base64_encode(b"foobar", B64_STD), b"Zm9vYmFy");
        assert_eq!(base64_encode(&[0xfb, 0xff], B64_STD), b"+/8");
        assert_eq!(base64_encode(&[0xfb, 0xff], B64_URL), b"-_8");
    }

    #[test]
    fn base64_cores_are_inside_every_alignment() {
        let value = b"hunter2-is-a-password!";
        for offset in 0..3 {
            for trail in 0..3 {
                let mut data = b"xyz"[..offset].to_vec();
                data.extend_from_slice(value);
                data.extend_from_slice(&b"uvw"[..trail]);
                let enc = base64_encode(&data, B64_STD);
                let (core, _, _) = base64_core(value, offset, B64_STD);
                assert!(core.len() >= value.len());
                assert!(contains(&enc, &core), "offset {offset} trail {trail}");
            }
        }
    }
}
