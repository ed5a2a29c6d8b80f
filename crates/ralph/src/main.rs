fn main() {
    std::process::exit(ralph_cli::main());
}
