//! `vdisim certify`, `vdisim cases`, `vdisim mutants` (not implemented yet).

#[derive(clap::Args)]
pub struct CertifyArgs {}

#[derive(clap::Args)]
pub struct CasesArgs {}

#[derive(clap::Args)]
pub struct MutantsArgs {}

pub fn run_certify(_args: CertifyArgs) -> u8 {
    eprintln!("vdisim certify: not implemented yet");
    2
}

pub fn run_cases(_args: CasesArgs) -> u8 {
    eprintln!("vdisim cases: not implemented yet");
    2
}

pub fn run_mutants(_args: MutantsArgs) -> u8 {
    eprintln!("vdisim mutants: not implemented yet");
    2
}
