//! Whether ralph colours what it prints, decided once per process in `main` and the same for
//! ralph's own lines and clap's help and errors: only on a terminal, never when `NO_COLOR` is
//! set to a non-empty value (<https://no-color.org>) or `TERM=dumb`. JSON output is never
//! coloured, whatever this says.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;

/// Colour on stdout and on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub stdout: bool,
    pub stderr: bool,
}

/// The rule, for one stream.
pub fn use_colour(is_tty: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    let dumb = term.is_some_and(|t| t == "dumb");
    is_tty && !no_color && !dumb
}

impl Style {
    /// From this process's environment and streams.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR");
        let term = std::env::var_os("TERM");
        let rule = |tty: bool| use_colour(tty, no_color.as_deref(), term.as_deref());
        Style {
            stdout: rule(std::io::stdout().is_terminal()),
            stderr: rule(std::io::stderr().is_terminal()),
        }
    }

    /// For clap, which has one setting for both streams: `Never` unless colour is allowed on
    /// one of them; then clap's `Auto` checks each stream for a terminal itself.
    pub fn clap_choice(self) -> clap::ColorChoice {
        if self.stdout || self.stderr {
            clap::ColorChoice::Auto
        } else {
            clap::ColorChoice::Never
        }
    }
}

static STYLE: OnceLock<Style> = OnceLock::new();

/// Records the decision; `main` calls it once, before anything is printed.
pub fn init(style: Style) {
    let _ = STYLE.set(style);
}

/// The decision `main` recorded; no colour at all before that (unit tests).
pub fn get() -> Style {
    STYLE.get().copied().unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Green,
    Yellow,
    Red,
}

/// `text` in `colour` when `on`, else unchanged.
pub fn paint(text: &str, colour: Colour, on: bool) -> String {
    if !on {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Green => 32,
        Colour::Yellow => 33,
        Colour::Red => 31,
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The colour of an iteration's outcome: green done, yellow undone or not yet accepted, red
/// failed or stopped by a guard.
pub fn outcome_colour(outcome: &str) -> Option<Colour> {
    match outcome {
        "completed" => Some(Colour::Green),
        "gates_failed" | "reverted" => Some(Colour::Yellow),
        "failed" | "blocked" => Some(Colour::Red),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_or_a_dumb_term() {
        let s = |v: &'static str| Some(OsStr::new(v));
        // (tty, NO_COLOR, TERM) → colour
        let cases = [
            (true, None, None, true),
            (true, None, s("xterm-256color"), true),
            (false, None, s("xterm-256color"), false),
            (true, s("1"), s("xterm"), false),
            (true, s("0"), s("xterm"), false),
            (true, s("false"), None, false),
            // An empty NO_COLOR is unset (no-color.org).
            (true, s(""), s("xterm"), true),
            (true, None, s("dumb"), false),
            (false, s("1"), s("dumb"), false),
            (true, None, s(""), true),
        ];
        for (tty, no_color, term, expected) in cases {
            assert_eq!(
                use_colour(tty, no_color, term),
                expected,
                "tty {tty}, NO_COLOR {no_color:?}, TERM {term:?}"
            );
        }
    }

    #[test]
    fn clap_follows_the_same_rule() {
        let off = Style::default();
        assert_eq!(off.clap_choice(), clap::ColorChoice::Never);
        let on = Style {
            stdout: false,
            stderr: true,
        };
        assert_eq!(on.clap_choice(), clap::ColorChoice::Auto);
    }

    #[test]
    fn painting() {
        assert_eq!(paint("ok", Colour::Green, false), "ok");
        assert_eq!(paint("ok", Colour::Green, true), "\x1b[32mok\x1b[0m");
        assert_eq!(paint("x", Colour::Red, true), "\x1b[31mx\x1b[0m");
        assert_eq!(outcome_colour("completed"), Some(Colour::Green));
        assert_eq!(outcome_colour("gates_failed"), Some(Colour::Yellow));
        assert_eq!(outcome_colour("blocked"), Some(Colour::Red));
        assert_eq!(outcome_colour("progressed"), None);
        assert_eq!(get(), Style::default());
    }
}
