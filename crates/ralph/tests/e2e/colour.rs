//! Colour: never with `NO_COLOR` set, never when the output is not a terminal (these tests run
//! without one), whatever clap or the environment would otherwise force. That colour does show
//! on a terminal is tested on the rendering itself (ralph-cli `render` and `style`).

use ralph_testkit::script::{Script, Step};

use crate::harness::*;

const ESC: char = '\x1b';

fn no_escape(what: &str, out: &Out) {
    assert!(
        !out.stdout.contains(ESC),
        "{what}: ESC on stdout: {:?}",
        out.stdout
    );
    assert!(
        !out.stderr.contains(ESC),
        "{what}: ESC on stderr: {:?}",
        out.stderr
    );
}

/// `ralph ARGS` with `env` on top of the harness's environment.
fn ralph_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = p.ralph();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Out::from(cmd.output().unwrap())
}

#[test]
fn no_escape_bytes_with_no_color_or_without_a_terminal() {
    let p = Project::new();
    let script = Script::new()
        .default_steps(vec![Step::print("working")])
        .on_call(2, vec![Step::print("LOOP_COMPLETE")]);
    p.configure_text(&script, "max_iterations = 3");
    // Colour-forcing settings other programs honour must not win over the rule; an empty
    // NO_COLOR is unset.
    let envs: [&[(&str, &str)]; 3] = [
        &[("NO_COLOR", "1"), ("TERM", "xterm-256color")],
        &[
            ("NO_COLOR", ""),
            ("TERM", "xterm-256color"),
            ("CLICOLOR_FORCE", "1"),
        ],
        &[
            ("NO_COLOR", "1"),
            ("CLICOLOR_FORCE", "1"),
            ("FORCE_COLOR", "1"),
        ],
    ];
    for env in envs {
        let run = ralph_env(&p, &["run", "--fresh"], env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("completed"), "{}", run.stderr);
        no_escape(&format!("run {env:?}"), &run);
        let doctor = ralph_env(&p, &["doctor"], env);
        assert!(doctor.stdout.contains("backends"), "{}", doctor.stdout);
        no_escape(&format!("doctor {env:?}"), &doctor);
        // clap's own help and errors.
        no_escape("help", &ralph_env(&p, &["run", "--help"], env));
        let usage = ralph_env(&p, &["run", "--no-such-flag"], env);
        assert_eq!(usage.code, 2, "{}", usage.stderr);
        no_escape("usage error", &usage);
    }
}
