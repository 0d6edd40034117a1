fn main() -> std::process::ExitCode {
    music_commander::main().into()
}
