fn main() {
    // Built for weft's own tests (the `testing` feature), the binary also serves the test
    // doubles `fault` and `echo`.
    #[cfg(feature = "testing")]
    let registry = weft::testing::registry();
    #[cfg(not(feature = "testing"))]
    let registry = weft::tasks::registry();
    weft::init(&registry);
    std::process::exit(weft::cli::main_with(registry));
}
