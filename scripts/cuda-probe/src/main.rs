//! Checks the CUDA toolchain of a `--features cuda` build independently of symc: runs the kinds of dfdx
//! kernel a symc model uses on the GPU and on the CPU, and compares the results. Each stage of the build
//! shows up: cuBLAS (matmul), the PTX that nvcc built (tanh, square, sums, backward), and the kernels NVRTC
//! builds at run time (non-contiguous reshape, concat). Exits 1 when the devices disagree.
use dfdx::prelude::*;

/// The loss of a small network and its gradient with respect to the input.
fn loss_and_grad<D: Device<f32>>(dev: &D, x: &[f32], w: &[f32]) -> Vec<f32> {
    let x = dev.tensor_from_vec(x.to_vec(), (4usize, 3usize));
    let w = dev.tensor_from_vec(w.to_vec(), (3usize, 5usize));
    let h = x.leaky_trace().matmul(w).tanh();
    let flat = h.permute::<_, Axes2<1, 0>>().reshape_like(&(20usize,));
    let joined = (flat, dev.ones_like(&(20usize,))).concat_along(Axis::<0>);
    let loss = joined.square().mean();
    let mut values = loss.retaped::<NoneTape>().as_vec();
    let grads = loss.backward();
    values.extend(grads.get(&x).as_vec());
    values
}

fn main() {
    let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let w: Vec<f32> = (0..15).map(|i| (i as f32 * 0.91).cos()).collect();
    let cpu = loss_and_grad(&Cpu::default(), &x, &w);
    let cuda = match Cuda::try_build(0, 0) {
        Ok(dev) => loss_and_grad(&dev, &x, &w),
        Err(err) => {
            eprintln!("cuda-probe: no CUDA device 0: {err:?}");
            std::process::exit(2);
        }
    };
    let worst = cpu
        .iter()
        .zip(&cuda)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1e-6))
        .fold(0.0f32, f32::max);
    println!("cuda-probe: loss cpu {:.7e} cuda {:.7e}", cpu[0], cuda[0]);
    println!("cuda-probe: max relative difference of loss and gradient: {worst:.2e} (limit 1e-4)");
    std::process::exit(if worst <= 1e-4 { 0 } else { 1 });
}
