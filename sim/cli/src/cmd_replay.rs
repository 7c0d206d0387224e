//! `vdisim replay` (not implemented yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> u8 {
    eprintln!("vdisim replay: not implemented yet");
    2
}
