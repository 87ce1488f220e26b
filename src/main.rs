fn main() {
    std::process::exit(symc::cli::main());
}
