//! Malformed `ralph.toml` files and the exact error text users see for each.
//!
//! Every case must fail, carry a line and column (all of these are inside the file) and match
//! its snapshot in `tests/it/snapshots/`. The snapshot's description holds the input, so a
//! snapshot can be reviewed on its own.

use std::path::Path;

use ralph_cli::config::{load, parse};

fn check(name: &str, src: &str) {
    let err = match parse(src, Path::new("ralph.toml")) {
        Ok(conf) => panic!("{name}: expected an error, got {conf:?}"),
        Err(e) => e,
    };
    assert!(
        err.line.is_some() && err.column.is_some(),
        "{name}: no location in {err}"
    );
    assert!(err.hint.is_some(), "{name}: no hint in {err}");
    assert_eq!(err.file, Path::new("ralph.toml"));
    insta::with_settings!({ description => src, omit_expression => true }, {
        insta::assert_snapshot!(name, err.to_string());
    });
}

macro_rules! cases {
    ($($name:ident: $src:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name), $src);
            }
        )*
    };
}

cases! {
    // TOML syntax
    syntax_missing_value: "[loop]\nmax_iterations = \n";
    syntax_unquoted_string: "[agent]\nbackend = claude\n";
    syntax_unquoted_duration: "[loop]\nmax_runtime = 4h\n";
    syntax_unterminated_string: "[agent]\nmodel = \"claude-sonnet-4-5\nargs = []\n";
    syntax_duplicate_key: "[loop]\nmax_iterations = 10\nidle_timeout = \"5m\"\nmax_iterations = 20\n";
    syntax_duplicate_section: "[loop]\nmax_iterations = 1\n\n[loop]\nidle_timeout = \"5m\"\n";
    syntax_gates_single_brackets_after_double: "[[gates]]\nname = \"a\"\nrun = \"true\"\n\n[gates]\nname = \"b\"\n";
    syntax_unterminated_header: "[loop\nmax_iterations = 1\n";
    syntax_missing_equals: "[loop]\nmax_iterations 10\n";
    syntax_unterminated_array: "[agent]\ncommand = [\"./agent\", \n";
    syntax_array_missing_comma: "[agent]\nargs = [\"-a\" \"-b\"]\n";
    syntax_bad_escape: "[loop]\nprompt_file = \"C:\\docs\\PROMPT.md\"\n";
    syntax_two_values_on_a_line: "[loop]\nmax_iterations = 10 idle_timeout = \"5m\"\n";

    // Structure: sections and keys
    unknown_section_typo: "[agnet]\nbackend = \"claude\"\n";
    unknown_section_array_typo: "[[gate]]\nname = \"tests\"\nrun = \"cargo test\"\n";
    unknown_key_typo: "[loop]\nmax_iteration = 10\n";
    unknown_key_in_wrong_section: "[loop]\nmax_cost_usd = 5.0\n";
    unknown_key_no_suggestion: "[git]\ncolour = \"blue\"\n";
    unknown_key_top_level: "backend = \"claude\"\n";
    unknown_key_in_inline_table: "agent = { backend = \"claude\", modle = \"x\" }\n";
    unknown_gate_key: "[[gates]]\nname = \"tests\"\ncmd = \"cargo test\"\n";
    array_where_table_expected: "agent = [\"claude\"]\n";
    string_where_table_expected: "loop = \"fast\"\n";
    array_of_tables_for_section: "[[loop]]\nmax_iterations = 3\n";
    gates_as_single_table: "[gates]\nname = \"tests\"\nrun = \"cargo test\"\n";
    gates_entry_not_a_table: "gates = [\"cargo test\"]\n";
    nested_table_in_section: "[loop]\nmax_iterations = 3\n\n[loop.extra]\nx = 1\n";
    dotted_key_typo_at_top_level: "agent.backnd = \"claude\"\n";
    quoted_key_with_space: "[loop]\n\"max iterations\" = 3\n";
    second_gate_bad_when: "[[gates]]\nname = \"a\"\nrun = \"true\"\n\n[[gates]]\nname = \"b\"\nrun = \"true\"\nwhen = \"Iteration\"\n";
    syntax_in_second_gate: "[[gates]]\nname = \"a\"\nrun = \"true\"\n\n[[gates]]\nname = b\n";

    // Features documented for later versions
    negative_daily_budget: "[budget]\nmax_cost_usd = 5.0\ndaily_usd = -100.0\n";
    alert_fraction_above_one: "[budget]\nalert_at = [0.5, 1.5]\n";
    alert_not_an_array: "[budget]\nalert_at = 0.5\n";
    stop_before_exceeding_as_string: "[budget]\nstop_before_exceeding = \"yes\"\n";
    safety_protected_paths_not_a_list: "[agent]\nbackend = \"claude\"\n\n[safety]\nprotected_paths = \".env\"\n";
    context_notes_too_small: "[context]\nnotes_max_tokens = 10\n";
    context_unknown_key: "[context]\nsummary_modle = \"x\"\n";

    // Whole numbers
    int_given_as_word: "[loop]\nmax_iterations = \"ten\"\n";
    int_given_as_string: "[loop]\nmax_iterations = \"10\"\n";
    int_given_as_float: "[loop]\nmax_iterations = 10.0\n";
    int_given_as_fraction: "[loop]\nmax_consecutive_failures = 2.5\n";
    int_given_as_bool: "[git]\ncheckpoint_every = true\n";
    int_given_as_date: "[loop]\nmax_iterations = 1979-05-27\n";
    int_zero_iterations: "[loop]\nmax_iterations = 0\n";
    int_zero_consecutive_failures: "[loop]\nmax_consecutive_failures = 0\n";
    int_negative_checkpoint_every: "[git]\ncheckpoint_every = -1\n";
    int_too_large: "[loop]\nmax_iterations = 5000000000\n";
    int_zero_max_tokens: "[budget]\nmax_tokens = 0\n";

    // Money
    cost_negative: "[budget]\nmax_cost_usd = -5.0\n";
    cost_zero: "[budget]\nmax_cost_usd = 0\n";
    cost_nan: "[budget]\nmax_cost_usd = nan\n";
    cost_infinite: "[budget]\nmax_cost_usd = inf\n";
    cost_as_string: "[budget]\nmax_cost_usd = \"$25\"\n";

    // Strings and arrays
    string_given_as_bool: "[agent]\nmodel = true\n";
    string_given_as_number: "[agent]\nmodel = 4\n";
    string_empty_model: "[agent]\nmodel = \"\"\n";
    string_empty_prompt_file: "[loop]\nprompt_file = \"  \"\n";
    array_given_as_string: "[agent]\nargs = \"--verbose --debug\"\n";
    array_with_a_number: "[agent]\nargs = [\"--depth\", 3]\n";

    // Durations
    duration_without_unit: "[loop]\nidle_timeout = \"10\"\n";
    duration_as_integer: "[loop]\niteration_timeout = 90\n";
    duration_in_words: "[loop]\nmax_runtime = \"5 minutes\"\n";
    duration_negative: "[loop]\nmax_runtime = \"-3s\"\n";
    duration_empty: "[loop]\nmax_runtime = \"\"\n";
    duration_zero_timeout: "[loop]\nmax_runtime = \"0s\"\n";
    duration_fraction: "[loop]\nmax_runtime = \"1.5h\"\n";
    duration_wrong_order: "[retry]\nmax_delay = \"30s10m\"\n";
    duration_gate_timeout_zero: "[[gates]]\nname = \"t\"\nrun = \"true\"\ntimeout = \"0ms\"\n";

    // Enumerations
    enum_bad_backend: "[agent]\nbackend = \"cladue\"\n";
    enum_backend_number: "[agent]\nbackend = 1\n";
    enum_bad_strategy: "[retry]\nstrategy = \"expo\"\n";
    enum_bad_gate_when: "[[gates]]\nname = \"tests\"\nrun = \"cargo test\"\nwhen = \"always\"\n";
    enum_bad_prompt_via: "[agent]\nprompt_via = \"pipe\"\n";
    enum_bad_output: "[agent]\noutput = \"json\"\n";
    enum_bad_permissions: "[agent]\npermissions = \"none\"\n";
    enum_auto_in_priority: "[agent]\npriority = [\"claude\", \"auto\"]\n";
    enum_unknown_fallback: "[agent]\nfallback = [\"gpt\"]\n";

    // Rules across keys
    custom_without_command: "[agent]\nbackend = \"custom\"\nprompt_via = \"arg\"\n";
    custom_with_empty_command: "[agent]\nbackend = \"custom\"\ncommand = []\n";
    command_given_as_string: "[agent]\nbackend = \"custom\"\ncommand = \"./agent --flag\"\n";
    command_with_empty_program: "[agent]\nbackend = \"custom\"\ncommand = [\"\", \"--flag\"]\n";
    allowlist_without_tools: "[agent]\npermissions = \"allowlist\"\n";
    allowlist_with_empty_tools: "[agent]\npermissions = \"allowlist\"\nallowed_tools = []\n";
    allowlist_with_empty_tool_name: "[agent]\npermissions = \"allowlist\"\nallowed_tools = [\"Read\", \"\"]\n";
    tools_without_allowlist: "[agent]\nallowed_tools = [\"Read\"]\n";
    retry_max_below_base: "[retry]\nbase_delay = \"30s\"\nmax_delay = \"10s\"\n";
    retry_base_above_default_max: "[retry]\nbase_delay = \"1h\"\n";
    retry_max_below_default_base: "[retry]\nmax_delay = \"1s\"\n";

    // Gates
    gate_duplicate_names: "[[gates]]\nname = \"tests\"\nrun = \"cargo test\"\n\n[[gates]]\nname = \"tests\"\nrun = \"cargo test --release\"\n";
    gate_name_with_slash: "[[gates]]\nname = \"unit/tests\"\nrun = \"cargo test\"\n";
    gate_name_empty: "[[gates]]\nname = \"\"\nrun = \"cargo test\"\n";
    gate_missing_run: "[[gates]]\nname = \"tests\"\n";
    gate_missing_name: "[[gates]]\nrun = \"cargo test\"\n";
    gate_empty_run: "[[gates]]\nname = \"tests\"\nrun = \" \"\n";

    // Sandbox
    sandbox_bad_mode: "[sandbox]\nmode = \"container\"\n";
    sandbox_mode_typo: "[sandbox]\nmode = \"workspce\"\n";
    sandbox_bad_network: "[sandbox]\nnetwork = \"none\"\n";
    sandbox_network_as_bool: "[sandbox]\nnetwork = false\n";
    sandbox_required_as_string: "[sandbox]\nrequired = \"yes\"\n";
    sandbox_host_url: "[sandbox]\nallow_hosts = [\"example.com\", \"https://api.example.com/v1\"]\n";
    sandbox_host_bad_port: "[sandbox]\nallow_hosts = [\"example.com:99999\"]\n";
    sandbox_host_wildcard_inside: "[sandbox]\nallow_hosts = [\"api.*.example.com\"]\n";
    sandbox_host_empty: "[sandbox]\nallow_hosts = [\"\"]\n";
    sandbox_hosts_as_string: "[sandbox]\nallow_hosts = \"example.com\"\n";
    sandbox_writable_root: "[sandbox]\nwritable = [\"target\", \"/\"]\n";
    sandbox_writable_home: "[sandbox]\nwritable = [\"~/\"]\n";
    sandbox_writable_nul: "[sandbox]\nwritable = [\"a\\u0000b\"]\n";
    sandbox_unknown_key: "[sandbox]\nallowed_hosts = [\"example.com\"]\n";
    sandbox_gates_unknown_key: "[sandbox.gates]\nnetwrk = \"off\"\n";
    sandbox_gates_nested_gates: "[sandbox.gates]\ngates = {}\n";
    sandbox_gates_not_a_table: "[sandbox]\ngates = \"off\"\n";
    sandbox_gates_bad_mode: "[sandbox]\nmode = \"off\"\n\n[sandbox.gates]\nmode = \"Strict\"\n";
    sandbox_key_in_wrong_section: "[safety]\nallow_hosts = []\n";

    // Completion marker
    marker_with_newline: "[loop]\ncompletion_marker = \"DONE\\nNOW\"\n";
    marker_empty: "[loop]\ncompletion_marker = \"\"\n";
    marker_with_spaces: "[loop]\ncompletion_marker = \" DONE \"\n";
}

/// Read failures happen before there is any text, so they have no location.
#[test]
fn file_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = load(&dir.path().join("ralph.toml")).unwrap_err();
    let directory = load(dir.path()).unwrap_err();
    for e in [&missing, &directory] {
        assert_eq!((e.line, e.column, &e.key), (None, None, &None));
    }
    let text = format!("{missing}\n{directory}");
    let text = text.replace(&dir.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("file_level_errors", text);
}

#[test]
fn invalid_utf8_points_at_the_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ralph.toml");
    std::fs::write(&path, b"[agent]\nmodel = \"caf\xe9\"\n").unwrap();
    let e = load(&path).unwrap_err();
    let text = e
        .to_string()
        .replace(&dir.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("invalid_utf8", text);
}

/// The first problem in file order is the one reported.
#[test]
fn first_problem_wins() {
    let e = parse(
        "[loop]\nmax_iterations = 0\n\n[agent]\nbackend = \"nope\"\n",
        Path::new("ralph.toml"),
    )
    .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("loop.max_iterations"));
    let e = parse(
        "[agent]\nbackend = \"nope\"\n\n[loop]\nmax_iterations = 0\n",
        Path::new("ralph.toml"),
    )
    .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("agent.backend"));
}

/// The file name in messages is the one the caller passed, relative or not.
#[test]
fn file_name_is_shown_as_given() {
    let e = parse("[loop]\nmax_iterations = 0\n", Path::new("conf/dev.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("error: conf/dev.toml:2:18: `loop.max_iterations`: "),
        "{e}"
    );
}

/// `[sandbox]` and `[sandbox.gates]` as written: paths untouched (the CLI resolves them), and
/// the gates' unset keys left unset (they take `[sandbox]`'s values when settings resolve).
#[test]
fn sandbox_sections_parse_as_written() {
    use ralph_sandbox::{Mode, Network};
    let c = parse(
        "[sandbox]\nmode = \"strict\"\nrequired = true\nwritable = [\"~/.cache\", \"out\"]\n\
         network = \"allowlist\"\nallow_hosts = [\"*.example.com:443\", \"[::1]:8080\"]\n\n\
         [sandbox.gates]\nnetwork = \"on\"\n",
        Path::new("ralph.toml"),
    )
    .unwrap();
    let a = &c.sandbox.agents;
    assert_eq!(a.mode, Some(Mode::Strict));
    assert_eq!(a.required, Some(true));
    let written: Vec<std::path::PathBuf> = vec!["~/.cache".into(), "out".into()];
    assert_eq!(a.writable, Some(written));
    assert_eq!(a.network, Some(Network::Allowlist));
    assert_eq!(a.allow_hosts.as_ref().map(Vec::len), Some(2));
    let g = &c.sandbox.gates;
    assert_eq!(g.network, Some(Network::On));
    assert_eq!((g.mode, g.required, &g.writable), (None, None, &None));
    assert_eq!(c.location("sandbox.writable[1]"), Some((4, 25)));
    let c = parse(
        "sandbox = { gates = { mode = \"off\" } }\n",
        Path::new("ralph.toml"),
    )
    .unwrap();
    assert_eq!(c.sandbox.gates.mode, Some(Mode::Off));
    assert_eq!(c.sandbox.agents.mode, None);
}
