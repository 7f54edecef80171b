fn main() {
    let registry = weft::tasks::registry();
    weft::init(&registry);
    std::process::exit(weft::cli::main_with(registry));
}
