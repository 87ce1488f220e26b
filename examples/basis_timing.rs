//! Cold equivariant-basis solves, each in a fresh process.
//!
//! `cargo run --release --example basis_timing` runs every case of
//! `benches/basis_cases.rs` in its own child process and prints a table;
//! `… -- 'SO(3) T4->T4'` runs one case in this process and prints
//! `dimension: N` and `seconds: S`, as `symc basis` does; `… -- --list`
//! prints the case names, one a line.

use std::process::{Command, ExitCode};
use symc::group::solve_timed;

#[path = "../benches/basis_cases.rs"]
mod basis_cases;

fn main() -> ExitCode {
    let cases = basis_cases::cases();
    match std::env::args().nth(1) {
        Some(flag) if flag == "--list" => {
            for case in &cases {
                println!("{}", case.name);
            }
            ExitCode::SUCCESS
        }
        Some(name) => {
            let Some(case) = cases.iter().find(|c| c.name == name) else {
                eprintln!("unknown case `{name}`");
                return ExitCode::FAILURE;
            };
            match solve_timed(&case.group, &case.rep_in, &case.rep_out) {
                Ok(solved) => {
                    println!("dimension: {}", solved.dimension);
                    println!("seconds: {:.6}", solved.seconds);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => run_all_in_children(&cases),
    }
}

fn run_all_in_children(cases: &[basis_cases::Case]) -> ExitCode {
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find this executable to re-run it");
        return ExitCode::FAILURE;
    };
    println!("| case | unknowns | dimension | cold solve (s) |");
    println!("| --- | ---: | ---: | ---: |");
    for case in cases {
        let output = match Command::new(&me).arg(case.name).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => format!("error: {}", String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => format!("error: {e}"),
        };
        let field = |key: &str| {
            output
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or("?")
                .trim()
                .to_string()
        };
        println!(
            "| {} | {} | {} | {} |",
            case.name,
            case.unknowns(),
            field("dimension:"),
            field("seconds:")
        );
    }
    ExitCode::SUCCESS
}
