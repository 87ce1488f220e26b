//! Writes the Hamiltonian mass-spring spec in Rust and checks it against its text twin.
//!
//! Run from the crate root: `cargo run --example builder`.

use std::path::Path;
use symc::lang::{ModelBuilder, Net, PortType, SpecBuilder, SymmetryKind};
use symc::plan::{Activation, DataConfig, LinearInit, Strategy, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let params = [
        ("trajectories", 50.0),
        ("points", 30.0),
        ("noise", 0.05),
        ("seed", 0.0),
    ];
    let spec = SpecBuilder::new().model(
        ModelBuilder::new("mass_spring_hnn")
            .data(DataConfig::Builtin {
                name: "mass_spring".into(),
                params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            })
            .state("q", PortType::Real(1))
            .state("p", PortType::Real(1))
            .symmetry(SymmetryKind::Time, Some(Strategy::Hamiltonian))
            .net(Net::Mlp {
                hidden: vec![200, 200],
                act: Activation::Tanh,
                init: LinearInit::Uniform,
            })
            .train(TrainConfig {
                steps: 2000,
                lr: 1e-3,
                batch: None,
                weight_decay: 0.0,
                seed: 0,
                schedule: "constant".into(),
                clip: None,
            }),
    );
    println!("# the spec the builder wrote\n{}", spec.source());
    let built = spec.compile(Path::new("specs"))?.graphs;

    let path = Path::new("specs/mass_spring_hnn.sym");
    let text = std::fs::read_to_string(path)?;
    let twin = symc::compile(&text, &path.display().to_string(), Path::new("specs"))?.graphs;

    print!("{}", symc::plan::to_yaml(&built)?);
    if built == twin {
        println!("# identical to the graph of {}", path.display());
        Ok(())
    } else {
        Err(format!("the built graph differs from {}", path.display()).into())
    }
}
