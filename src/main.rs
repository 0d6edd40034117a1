fn main() -> std::process::ExitCode {
    music_commander::cli::main().into()
}
