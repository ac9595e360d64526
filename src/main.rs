//! The `confd` binary: everything happens in [`confd::app::run`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(confd::app::run(std::env::args_os()))
}
