//! Convolution networks on images: plain (`Op::Conv`) and group convolutions
//! over p4 or p4m (`Op::GroupConv`), as one fused custom op per network.
//!
//! Layout. An input row is an image of `height × width` pixels, each with
//! `width_in / (height · width)` channels, pixel-major (row by row, channels
//! innermost). Every feature map is kept pixel-major too, with the channels of
//! a pixel ordered (channel, group element): entry `c · |G| + g`. Pixel-major
//! maps make im2col a sequence of contiguous copies and let each layer be one
//! `gemm` of the patch matrix with the expanded filter bank.
//!
//! The group acts on filters, not on the data. Each layer owns one parameter
//! set per output channel; the filter of output `(c, g)` is that set moved by
//! `g`: the lifting layer (image → p4) uses `ψ_c(g⁻¹u)`, a group layer
//! (p4 → p4) uses `ψ_c(g⁻¹h, g⁻¹u)` for input group element `h` and kernel
//! offset `u`. Quarter turns and mirrors of an odd kernel are exact index
//! permutations, so the layers are exactly equivariant: turning the image by
//! `r` turns every feature map and moves its group axis `g ↦ rg`. Layers are
//! cross-correlations with zero padding `kernel / 2` (the map keeps its size),
//! each followed by a bias per channel (shared by the channel's group
//! elements) and ReLU.
//!
//! Output. `Op::Conv`, and `Op::GroupConv` with `invariant`, take the maximum of the last
//! map over pixels and group elements: one value per channel, invariant to the
//! group's rotations of a square image. Without `invariant` the output is the
//! last feature map itself, `height · width · channels · |G|` values per row in
//! the layout above.
//!
//! Parameters of layer `l` (from 0) of node `n`: `n{n}.conv{l}.weight`, shape
//! `[c_l, c_{l−1} · |G_in|, kernel, kernel]` (`|G_in|` is 1 for the first
//! layer), and `n{n}.conv{l}.bias`, shape `[c_l]`; initialised as PyTorch
//! initialises a convolution, U(±1/√fan_in).

use super::super::kernels::gemm::{matmul, MatMut, MatRef};
use super::super::kernels::tape::{custom_op, host, KernelDevice, Mat};
use super::super::params::Param;
use super::super::BackendError;
use dfdx::prelude::*;
use rand::rngs::StdRng;
use rayon::prelude::*;

/// A symmetry of the square pixel grid about its centre: `r^turns · s^mirror`,
/// where `r` is a quarter turn and `s` the mirror `(row, col) ↦ (row, −col)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element {
    mirror: bool,
    turns: u8,
}

impl Element {
    /// The elements of the group of `order` 1 (trivial), 4 (p4's rotations) or
    /// 8 (p4m's), in the order of the group axis.
    pub(crate) fn all(order: usize) -> impl Iterator<Item = Element> {
        (0..order).map(Element::at)
    }

    /// The element at position `i` of the group axis.
    fn at(i: usize) -> Element {
        Element {
            mirror: i >= 4,
            turns: (i % 4) as u8,
        }
    }

    /// Position on the group axis.
    pub(crate) fn index(self) -> usize {
        usize::from(self.mirror) * 4 + usize::from(self.turns)
    }

    /// `self · other`, using `s r = r⁻¹ s`.
    pub(crate) fn compose(self, other: Element) -> Element {
        let turns = if self.mirror {
            self.turns + 4 - other.turns
        } else {
            self.turns + other.turns
        };
        Element {
            mirror: self.mirror != other.mirror,
            turns: turns % 4,
        }
    }

    pub(crate) fn inverse(self) -> Element {
        if self.mirror {
            self
        } else {
            Element {
                mirror: false,
                turns: (4 - self.turns) % 4,
            }
        }
    }

    /// The action on integer (row, column) coordinates about the origin;
    /// `r(u, v) = (v, −u)`.
    pub(crate) fn act(self, (u, v): (i64, i64)) -> (i64, i64) {
        let mut p = if self.mirror { (u, -v) } else { (u, v) };
        for _ in 0..self.turns {
            p = (p.1, -p.0);
        }
        p
    }
}

/// One convolution layer: its parameters and the map from the expanded filter
/// bank (`|G|` moved copies of each filter) back to them.
struct ConvLayer<D: KernelDevice> {
    weight: Param<D>,
    bias: Param<D>,
    /// Channels of the output, before the group axis.
    out_channels: usize,
    /// Channels of the input pixel, group axis included.
    in_width: usize,
    /// `gather[i]` is the weight entry behind entry `i` of the expanded bank,
    /// a row-major `(out_channels · |G|) × (kernel² · in_width)` matrix.
    gather: Vec<usize>,
}

impl<D: KernelDevice> ConvLayer<D> {
    /// The filter bank the forward pass multiplies by.
    fn expanded(&self) -> Vec<f32> {
        let w = self.weight.values();
        self.gather.iter().map(|&i| w[i]).collect()
    }
}

/// A stack of (group) convolutions with ReLU, optionally pooled.
pub(crate) struct ConvNet<D: KernelDevice> {
    layers: Vec<ConvLayer<D>>,
    /// Order of the group acting on filters (1 for a plain CNN).
    order: usize,
    kernel: usize,
    height: usize,
    width: usize,
    pooled: bool,
}

/// What the forward pass keeps for the backward pass of one layer.
struct Saved {
    /// The patch matrix, `(rows · pixels) × (kernel² · in_width)`.
    patches: Vec<f32>,
    bank: Vec<f32>,
    /// The layer's output after ReLU.
    output: Vec<f32>,
}

/// The shape of a network, as the IR describes it.
pub(crate) struct ConvShape<'a> {
    /// `p4`, `p4m`, or `None` for a plain convolution network.
    pub(crate) group: Option<&'a str>,
    pub(crate) channels: &'a [usize],
    pub(crate) kernel: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) pooled: bool,
}

impl<D: KernelDevice> ConvNet<D> {
    /// Builds the network for node `node` reading `input_width` values per row.
    pub(crate) fn new(
        device: &D,
        node: usize,
        shape: ConvShape<'_>,
        input_width: usize,
        rng: &mut StdRng,
    ) -> Result<Self, BackendError> {
        let order = match shape.group {
            None => 1,
            Some("p4") => 4,
            Some("p4m") => 8,
            Some(other) => {
                return Err(BackendError::InvalidGraph(format!(
                    "node {node}: unknown image group `{other}` (expected `p4` or `p4m`)"
                )))
            }
        };
        let pixels = shape.height * shape.width;
        let invalid = |why: &str| BackendError::InvalidGraph(format!("node {node}: {why}"));
        if shape.kernel % 2 == 0 {
            return Err(invalid("the kernel size must be odd"));
        }
        if shape.channels.is_empty() || shape.channels.contains(&0) {
            return Err(invalid(
                "a convolution needs at least one layer of channels",
            ));
        }
        if pixels == 0 || input_width % pixels != 0 || input_width == 0 {
            return Err(BackendError::ShapeMismatch {
                what: format!("input width of node {node} (a whole number of images)"),
                expected: pixels.max(1),
                found: input_width,
            });
        }
        if order > 1 && shape.height != shape.width {
            return Err(invalid("rotations need a square image"));
        }
        let k2 = shape.kernel * shape.kernel;
        let mut in_width = input_width / pixels;
        let mut layers = Vec::with_capacity(shape.channels.len());
        for (l, &out_channels) in shape.channels.iter().enumerate() {
            let in_order = if l == 0 { 1 } else { order };
            let fan_in = in_width * k2;
            let init = 1.0 / (fan_in as f32).sqrt();
            let weight = Param::new(
                device,
                format!("n{node}.conv{l}.weight"),
                vec![out_channels, in_width, shape.kernel, shape.kernel],
                init,
                rng,
            )?;
            let bias = Param::new(
                device,
                format!("n{node}.conv{l}.bias"),
                vec![out_channels],
                init,
                rng,
            )?;
            let gather = gather_map(out_channels, in_width, in_order, order, shape.kernel);
            layers.push(ConvLayer {
                weight,
                bias,
                out_channels,
                in_width,
                gather,
            });
            in_width = out_channels * order;
        }
        Ok(ConvNet {
            layers,
            order,
            kernel: shape.kernel,
            height: shape.height,
            width: shape.width,
            pooled: shape.pooled,
        })
    }

    pub(crate) fn out_width(&self) -> usize {
        let last = self.layers.last().map_or(0, |l| l.out_channels);
        if self.pooled {
            last
        } else {
            last * self.order * self.height * self.width
        }
    }

    pub(crate) fn params(&self) -> impl Iterator<Item = &Param<D>> {
        self.layers.iter().flat_map(|l| [&l.weight, &l.bias])
    }

    pub(crate) fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<D>> {
        self.layers
            .iter_mut()
            .flat_map(|l| [&mut l.weight, &mut l.bias])
    }

    pub(crate) fn forward<T: Tape<f32, D>>(&self, x: Mat<D, T>) -> Result<Mat<D, T>, BackendError> {
        let rows = x.shape().0;
        let pixels = self.height * self.width;
        let k2 = self.kernel * self.kernel;
        let expected = self.layers[0].in_width * pixels;
        if x.shape().1 != expected {
            return Err(BackendError::ShapeMismatch {
                what: "input width of a convolution network".into(),
                expected,
                found: x.shape().1,
            });
        }
        let mut map = host(&x);
        let mut saved = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let width = layer.out_channels * self.order;
            let patches = self.im2col(&map, rows, layer.in_width);
            let bank = layer.expanded();
            let mut out = vec![0.0; rows * pixels * width];
            matmul(
                MatRef::new(&patches, rows * pixels, k2 * layer.in_width),
                MatRef::new(&bank, width, k2 * layer.in_width).t(),
                MatMut::new(&mut out, rows * pixels, width),
                false,
            );
            let bias = layer.bias.values();
            for pixel in out.chunks_exact_mut(width) {
                for (v, b) in pixel.iter_mut().zip(
                    bias.iter()
                        .flat_map(|b| std::iter::repeat(b).take(self.order)),
                ) {
                    *v = (*v + b).max(0.0);
                }
            }
            if T::OWNS_TAPE {
                saved.push(Saved {
                    patches,
                    bank,
                    output: out.clone(),
                });
            }
            map = out;
        }
        let width = self.out_width();
        let map_len = map.len();
        let (result, argmax) = if self.pooled {
            pool(&map, rows, width, self.order)
        } else {
            (map, Vec::new())
        };
        let handles: Vec<_> = self
            .layers
            .iter()
            .map(|l| (l.weight.handle(), l.bias.handle()))
            .collect();
        let shape = self.geometry();
        let plan: Vec<_> = self
            .layers
            .iter()
            .map(|l| (l.gather.clone(), l.in_width, l.out_channels))
            .collect();
        let (order, pooled) = (self.order, self.pooled);
        custom_op(x, result, width, move |grad_out, grads, input| {
            let mut grad = if pooled {
                unpool(&grad_out, &argmax, map_len)
            } else {
                grad_out
            };
            for (l, (s, ((weight, bias), (gather, in_width, out_channels)))) in saved
                .iter()
                .zip(handles.iter().zip(&plan))
                .enumerate()
                .rev()
            {
                let cols = out_channels * order;
                let inner = k2 * in_width;
                grad.iter_mut()
                    .zip(&s.output)
                    .for_each(|(g, y)| *g = if *y > 0.0 { *g } else { 0.0 });
                let gb = grads.slice(bias)?;
                for pixel in grad.chunks_exact(cols) {
                    for (c, g) in pixel.chunks_exact(order).enumerate() {
                        gb[c] += g.iter().sum::<f32>();
                    }
                }
                let mut g_bank = vec![0.0; cols * inner];
                let gm = MatRef::new(&grad, rows * pixels, cols);
                matmul(
                    gm.t(),
                    MatRef::new(&s.patches, rows * pixels, inner),
                    MatMut::new(&mut g_bank, cols, inner),
                    false,
                );
                let gw = grads.slice(weight)?;
                for (&i, g) in gather.iter().zip(&g_bank) {
                    gw[i] += g;
                }
                let mut g_patches = vec![0.0; rows * pixels * inner];
                let g_patch_mat = MatMut::new(&mut g_patches, rows * pixels, inner);
                matmul(gm, MatRef::new(&s.bank, cols, inner), g_patch_mat, false);
                let mut g_in = vec![0.0; rows * pixels * in_width];
                shape.col2im(&g_patches, &mut g_in, *in_width);
                if l == 0 {
                    grads
                        .slice(input)?
                        .iter_mut()
                        .zip(&g_in)
                        .for_each(|(a, g)| *a += g);
                }
                grad = g_in;
            }
            Ok(())
        })
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            kernel: self.kernel,
            height: self.height,
            width: self.width,
        }
    }

    fn im2col(&self, map: &[f32], rows: usize, channels: usize) -> Vec<f32> {
        let g = self.geometry();
        let mut patches = vec![0.0; rows * g.pixels() * g.k2() * channels];
        g.im2col(map, &mut patches, channels);
        patches
    }
}

/// The pixel grid and kernel, for moving between maps and patch matrices.
#[derive(Clone, Copy)]
struct Geometry {
    kernel: usize,
    height: usize,
    width: usize,
}

impl Geometry {
    fn pixels(self) -> usize {
        self.height * self.width
    }

    fn k2(self) -> usize {
        self.kernel * self.kernel
    }

    /// For every pixel and kernel offset the source pixel, if inside the image:
    /// the zero padding.
    fn source(self, pixel: usize, offset: usize) -> Option<usize> {
        let half = (self.kernel / 2) as isize;
        let i = (pixel / self.width) as isize + (offset / self.kernel) as isize - half;
        let j = (pixel % self.width) as isize + (offset % self.kernel) as isize - half;
        let inside =
            (0..self.height as isize).contains(&i) && (0..self.width as isize).contains(&j);
        inside.then(|| i as usize * self.width + j as usize)
    }

    /// Writes row `(image, pixel)` of the patch matrix: the `kernel²` source
    /// pixels' channels in turn.
    fn im2col(self, map: &[f32], patches: &mut [f32], channels: usize) {
        let image = self.pixels() * channels;
        let patch = self.k2() * channels;
        patches
            .par_chunks_mut(self.pixels() * patch)
            .zip(map.par_chunks(image))
            .for_each(|(out, img)| {
                for (p, row) in out.chunks_exact_mut(patch).enumerate() {
                    for (o, dst) in row.chunks_exact_mut(channels).enumerate() {
                        if let Some(s) = self.source(p, o) {
                            dst.copy_from_slice(&img[s * channels..(s + 1) * channels]);
                        }
                    }
                }
            });
    }

    /// The adjoint of [`Geometry::im2col`]: adds each patch entry back into its source pixel.
    fn col2im(self, patches: &[f32], map: &mut [f32], channels: usize) {
        let image = self.pixels() * channels;
        let patch = self.k2() * channels;
        map.par_chunks_mut(image)
            .zip(patches.par_chunks(self.pixels() * patch))
            .for_each(|(img, rows)| {
                for (p, row) in rows.chunks_exact(patch).enumerate() {
                    for (o, src) in row.chunks_exact(channels).enumerate() {
                        if let Some(s) = self.source(p, o) {
                            img[s * channels..(s + 1) * channels]
                                .iter_mut()
                                .zip(src)
                                .for_each(|(a, v)| *a += v);
                        }
                    }
                }
            });
    }
}

/// The expanded-bank → weight index map of a layer with `out` output and
/// `in_width` input channels (group axis of order `in_order` innermost), whose
/// outputs carry a group axis of order `order`.
///
/// Entry `((c, g), (u, (ci, h)))` of the bank is `ψ[c, (ci, g⁻¹h), g⁻¹u]`.
fn gather_map(
    out: usize,
    in_width: usize,
    in_order: usize,
    order: usize,
    kernel: usize,
) -> Vec<usize> {
    let k2 = kernel * kernel;
    let half = (kernel / 2) as i64;
    let mut gather = Vec::with_capacity(out * order * k2 * in_width);
    for c in 0..out {
        for g in Element::all(order) {
            let inv = g.inverse();
            for offset in 0..k2 {
                let u = (offset / kernel) as i64 - half;
                let v = (offset % kernel) as i64 - half;
                let (su, sv) = inv.act((u, v));
                let moved = ((su + half) * kernel as i64 + sv + half) as usize;
                for ci in 0..in_width {
                    let h = ci % in_order;
                    let moved_h = if in_order == 1 {
                        h
                    } else {
                        inv.compose(Element::at(h)).index()
                    };
                    gather.push((c * in_width + ci - h + moved_h) * k2 + moved);
                }
            }
        }
    }
    gather
}

/// Maxima over pixels and group elements, `rows × channels`, with the index in
/// `map` of each maximum (the first one on ties).
fn pool(map: &[f32], rows: usize, channels: usize, order: usize) -> (Vec<f32>, Vec<usize>) {
    let per_image = map.len() / rows;
    let mut out = vec![f32::NEG_INFINITY; rows * channels];
    let mut at = vec![0; rows * channels];
    for (r, image) in map.chunks_exact(per_image).enumerate() {
        let (o, a) = (
            &mut out[r * channels..(r + 1) * channels],
            &mut at[r * channels..(r + 1) * channels],
        );
        for (i, &v) in image.iter().enumerate() {
            let c = i / order % channels;
            if v > o[c] {
                o[c] = v;
                a[c] = r * per_image + i;
            }
        }
    }
    (out, at)
}

/// The adjoint of [`pool`]: each gradient goes to the entry that was the maximum.
fn unpool(grad: &[f32], at: &[usize], len: usize) -> Vec<f32> {
    let mut out = vec![0.0; len];
    for (&g, &i) in grad.iter().zip(at) {
        out[i] += g;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, check_gradients_with_step, random_matrix};
    use super::super::Layer;
    use super::*;
    use rand::{Rng, SeedableRng};

    fn net(group: Option<&str>, channels: &[usize], side: usize, pooled: bool) -> ConvNet<Cpu> {
        let shape = ConvShape {
            group,
            channels,
            kernel: 3,
            height: side,
            width: side,
            pooled,
        };
        ConvNet::new(
            &Cpu::default(),
            4,
            shape,
            side * side,
            &mut StdRng::seed_from_u64(3),
        )
        .unwrap()
    }

    fn run(net: &ConvNet<Cpu>, x: &[f32], rows: usize) -> Vec<f32> {
        let x = Cpu::default().tensor_from_vec(x.to_vec(), (rows, x.len() / rows));
        host(&net.forward(x).unwrap())
    }

    /// Moves each image (pixel-major, `channels · order` values per pixel) of
    /// `maps` by `r`: the value at pixel `p`, group element `g` goes to `r·p`, `r·g`.
    fn transform(r: Element, maps: &[f32], side: usize, order: usize, rows: usize) -> Vec<f32> {
        let per_pixel = maps.len() / (rows * side * side);
        let mut out = vec![0.0; maps.len()];
        let doubled = |i: usize| 2 * i as i64 - (side as i64 - 1);
        let undoubled = |d: i64| ((d + side as i64 - 1) / 2) as usize;
        for (src, dst) in maps
            .chunks_exact(side * side * per_pixel)
            .zip(out.chunks_exact_mut(side * side * per_pixel))
        {
            for p in 0..side * side {
                let (i, j) = r.act((doubled(p / side), doubled(p % side)));
                let q = undoubled(i) * side + undoubled(j);
                for (c, v) in src[p * per_pixel..(p + 1) * per_pixel].iter().enumerate() {
                    let (base, g) = (c - c % order, c % order);
                    let moved = if order == 1 {
                        g
                    } else {
                        r.compose(Element::at(g)).index()
                    };
                    dst[q * per_pixel + base + moved] = *v;
                }
            }
        }
        out
    }

    #[test]
    fn elements_compose_as_their_actions_and_invert() {
        let point = (2, -1);
        for a in Element::all(8) {
            assert_eq!(a.compose(a.inverse()).index(), 0);
            assert_eq!(a.inverse().act(a.act(point)), point);
            for b in Element::all(8) {
                assert_eq!(a.compose(b).act(point), a.act(b.act(point)));
            }
        }
        assert_eq!(
            Element::all(4).map(|g| g.act((1, 0))).collect::<Vec<_>>(),
            [(1, 0), (0, -1), (-1, 0), (0, 1)]
        );
    }

    #[test]
    fn turned_and_mirrored_images_move_feature_maps_and_keep_pooled_outputs() {
        let mut rng = StdRng::seed_from_u64(9);
        for (group, order) in [("p4", 4), ("p4m", 8)] {
            let (side, rows) = (6, 3);
            let x = random_matrix(rows, side * side, rng.gen());
            let maps = net(Some(group), &[3, 2], side, false);
            let pooled = net(Some(group), &[3, 2], side, true);
            let (y, z) = (run(&maps, &x, rows), run(&pooled, &x, rows));
            for _ in 0..4 {
                let r = Element::at(rng.gen_range(1..order));
                let turned = transform(r, &x, side, 1, rows);
                let expected = transform(r, &y, side, order, rows);
                assert_close(&run(&maps, &turned, rows), &expected, 1e-5);
                assert_close(&run(&pooled, &turned, rows), &z, 1e-5);
            }
        }
    }

    #[test]
    fn plain_convolutions_are_not_turn_invariant() {
        let side = 6;
        let x = random_matrix(2, side * side, 5);
        let plain = net(None, &[4], side, true);
        let turned = transform(Element::at(1), &x, side, 1, 2);
        let (a, b) = (run(&plain, &x, 2), run(&plain, &turned, 2));
        assert!(a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn parameter_counts_follow_the_filter_sharing() {
        let count = |n: &ConvNet<Cpu>| n.params().map(Param::len).sum::<usize>();
        // Lifting: 16·9 + 16; group layer: 32·16·4·9 + 32.
        assert_eq!(count(&net(Some("p4"), &[16, 32], 8, true)), 160 + 18_464);
        assert_eq!(count(&net(Some("p4m"), &[2], 8, true)), 2 * 9 + 2);
        assert_eq!(
            count(&net(None, &[4, 5], 8, true)),
            4 * 9 + 4 + 5 * 4 * 9 + 5
        );
        assert_eq!(net(Some("p4m"), &[2, 3], 5, false).out_width(), 3 * 8 * 25);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let build = |group, kernel, side: usize, input| {
            let shape = ConvShape {
                group,
                channels: &[2],
                kernel,
                height: side,
                width: 4,
                pooled: true,
            };
            ConvNet::<Cpu>::new(
                &Cpu::default(),
                0,
                shape,
                input,
                &mut StdRng::seed_from_u64(0),
            )
            .is_err()
        };
        assert!(build(Some("p6"), 3, 4, 16));
        assert!(build(Some("p4"), 2, 4, 16));
        assert!(build(Some("p4"), 3, 3, 12));
        assert!(build(None, 3, 4, 15));
        assert!(!build(None, 3, 3, 24));
    }

    #[test]
    fn gradients_match_finite_differences() {
        // ReLU kinks lie about 1e-2 apart in these small networks: a smaller step keeps
        // the differences on one linear piece.
        for (group, pooled) in [(Some("p4"), true), (Some("p4m"), false), (None, true)] {
            let mut layer = Layer::Conv(net(group, &[2, 2], 3, pooled));
            check_gradients_with_step(&mut layer, 1, 9, 1e-3);
        }
    }
}
