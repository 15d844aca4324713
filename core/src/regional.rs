//! Regional mode's cryptography (DESIGN §8b): a node's exact, bounded cell vector is
//! secret-shared between two aggregators as a Prio3SumVec report (libprio, the VDAF of IETF DAP
//! and Divvi Up's Janus); each aggregator verifies the range proof with the other, sums the
//! output shares of the reports that verified, and adds discrete Gaussian noise (libprio's exact
//! sampler) to every element of its aggregate share; the leader unshards the two noisy shares.
//!
//! Nothing here does I/O. The node calls [`shard`]; the leader and the helper call
//! [`verify_start`], [`verify_finish`], [`aggregate`] and [`add_noise`]; the leader calls
//! [`unshard`]. Every byte string from a peer is decoded with its expected length, and a decode
//! failure is an error, never a panic.
//!
//! The context string binds every report to its query id: a report made for one query does not
//! verify in another.

use num_traits::ToPrimitive;
use prio::codec::{Decode, Encode, ParameterizedDecode};
use prio::dp::Rational;
use prio::dp::distributions::DiscreteGaussian;
use prio::field::{Field128, FieldElement, FieldElementWithInteger};
use prio::vdaf::prio3::{Prio3InputShare, Prio3PublicShare, Prio3SumVec, optimal_chunk_length};
use prio::vdaf::{AggregateShare, Aggregator, Client, Collector, OutputShare, VerifyTransition};
use rand_prio::SeedableRng;
use rand_prio::distr::Distribution;
use rand_prio::rngs::StdRng;

/// Bytes of a report nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of the verification key the aggregators share for one batch.
pub const VERIFY_KEY_LEN: usize = 32;
/// Aggregator index of the leader (the coordinator).
pub const LEADER: usize = 0;
/// Aggregator index of the helper.
pub const HELPER: usize = 1;
/// Largest vector a report may have (the node's `max_cells` is lower in practice).
pub const MAX_CELLS: usize = 100_000;
/// Largest per-cell bound a regional query may set.
pub const MAX_CELL_BOUND: u64 = 1 << 32;
/// σ is carried in millionths on the wire.
pub const SIGMA_SCALE: u64 = 1_000_000;

/// Why a regional step failed. Messages carry no share or cell value.
#[derive(Debug, thiserror::Error)]
pub enum RegionalError {
    /// The vector length or cell bound is outside what regional mode accepts.
    #[error("bad parameters: {0}")]
    Parameters(&'static str),
    /// A share, nonce or key from a peer does not decode at the expected length.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The report's proof did not verify (or the two aggregators' messages disagree).
    #[error("the report's proof did not verify")]
    Proof,
    /// libprio refused an operation.
    #[error("vdaf: {0}")]
    Vdaf(String),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// The noise sampler failed.
    #[error("noise sampler: {0}")]
    Noise(String),
}

/// The VDAF of a query whose universe has `cells` cells, each bounded by `max_cell`.
#[derive(Clone, Debug)]
pub struct Vdaf {
    inner: Prio3SumVec,
    cells: usize,
}

/// What an aggregator keeps between the two verification steps of one report.
#[derive(Clone)]
pub struct VerifyState(<Prio3SumVec as Aggregator<VERIFY_KEY_LEN, NONCE_LEN>>::VerifyState);

impl std::fmt::Debug for VerifyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyState(..)")
    }
}

/// One verified report's output share (an additive share of the node's vector).
#[derive(Clone)]
pub struct Output(OutputShare<Field128>);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output(..)")
    }
}

/// One aggregator's aggregate share.
#[derive(Clone)]
pub struct Share(AggregateShare<Field128>);

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Share(..)")
    }
}

/// A node's sharded report. `Debug` shows no share.
#[derive(Clone)]
pub struct Report {
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Encoded public share.
    pub public_share: Vec<u8>,
    /// Encoded leader input share.
    pub leader_share: Vec<u8>,
    /// Encoded helper input share.
    pub helper_share: Vec<u8>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("public_share_len", &self.public_share.len())
            .field("leader_share_len", &self.leader_share.len())
            .field("helper_share_len", &self.helper_share.len())
            .finish_non_exhaustive()
    }
}

/// The Prio3 application context of `query_id`.
pub fn context(query_id: &str) -> Vec<u8> {
    let mut ctx = b"vrs.federation.v2.regional\0".to_vec();
    ctx.extend_from_slice(query_id.as_bytes());
    ctx
}

fn vdaf_err(e: impl std::fmt::Display) -> RegionalError {
    RegionalError::Vdaf(e.to_string())
}

/// Fresh random bytes from the operating system (ring's `SystemRandom`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RegionalError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| RegionalError::Random)?;
    Ok(b)
}

impl Vdaf {
    /// The VDAF for `cells` cells bounded by `max_cell` (two aggregators).
    pub fn new(cells: usize, max_cell: u64) -> Result<Vdaf, RegionalError> {
        if cells == 0 || cells > MAX_CELLS {
            return Err(RegionalError::Parameters("cells out of range"));
        }
        if max_cell == 0 || max_cell > MAX_CELL_BOUND {
            return Err(RegionalError::Parameters("max_cell out of range"));
        }
        let bits = 64 - max_cell.leading_zeros() as usize;
        let inner = Prio3SumVec::new_sum_vec(
            2,
            u128::from(max_cell),
            cells,
            optimal_chunk_length(cells * bits),
        )
        .map_err(vdaf_err)?;
        Ok(Vdaf { inner, cells })
    }

    /// The vector length.
    pub fn cells(&self) -> usize {
        self.cells
    }

    /// Node side: shards `measurement` (one value per cell, each at most `max_cell`).
    pub fn shard(&self, query_id: &str, measurement: &[u128]) -> Result<Report, RegionalError> {
        if measurement.len() != self.cells {
            return Err(RegionalError::Parameters("measurement length"));
        }
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let (public, inputs) = self
            .inner
            .shard(&context(query_id), &measurement.to_vec(), &nonce)
            .map_err(vdaf_err)?;
        let [leader, helper]: [Prio3InputShare<Field128, 32>; 2] = inputs
            .try_into()
            .map_err(|_| RegionalError::Vdaf("expected two input shares".into()))?;
        Ok(Report {
            nonce,
            public_share: public.get_encoded().map_err(vdaf_err)?,
            leader_share: leader.get_encoded().map_err(vdaf_err)?,
            helper_share: helper.get_encoded().map_err(vdaf_err)?,
        })
    }

    /// Aggregator `agg_id` starts verifying one report: its state and its encoded verifier
    /// share (sent to the other aggregator).
    pub fn verify_start(
        &self,
        verify_key: &[u8],
        query_id: &str,
        agg_id: usize,
        nonce: &[u8],
        public_share: &[u8],
        input_share: &[u8],
    ) -> Result<(VerifyState, Vec<u8>), RegionalError> {
        let key: &[u8; VERIFY_KEY_LEN] = verify_key
            .try_into()
            .map_err(|_| RegionalError::Malformed("verify key"))?;
        let nonce: &[u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| RegionalError::Malformed("nonce"))?;
        let public = Prio3PublicShare::get_decoded_with_param(&self.inner, public_share)
            .map_err(|_| RegionalError::Malformed("public share"))?;
        let input = Prio3InputShare::get_decoded_with_param(&(&self.inner, agg_id), input_share)
            .map_err(|_| RegionalError::Malformed("input share"))?;
        let (state, share) = self
            .inner
            .verify_init(key, &context(query_id), agg_id, &(), nonce, &public, &input)
            .map_err(|_| RegionalError::Proof)?;
        Ok((VerifyState(state), share.get_encoded().map_err(vdaf_err)?))
    }

    /// Finishes verifying one report from both aggregators' verifier shares: the output share,
    /// or [`RegionalError::Proof`] when the report is invalid (out of range, tampered).
    pub fn verify_finish(
        &self,
        query_id: &str,
        state: VerifyState,
        leader_share: &[u8],
        helper_share: &[u8],
    ) -> Result<Output, RegionalError> {
        type Share = <Prio3SumVec as Aggregator<VERIFY_KEY_LEN, NONCE_LEN>>::VerifierShare;
        let decode = |b: &[u8]| {
            Share::get_decoded_with_param(&state.0, b)
                .map_err(|_| RegionalError::Malformed("verifier share"))
        };
        let shares = [decode(leader_share)?, decode(helper_share)?];
        let ctx = context(query_id);
        let message = self
            .inner
            .verifier_shares_to_message(&ctx, &(), shares)
            .map_err(|_| RegionalError::Proof)?;
        match self
            .inner
            .verify_next(&ctx, state.0, message)
            .map_err(|_| RegionalError::Proof)?
        {
            VerifyTransition::Finish(out) => Ok(Output(out)),
            VerifyTransition::Continue(..) => Err(RegionalError::Proof),
        }
    }

    /// Sums output shares into an aggregate share.
    pub fn aggregate(&self, outputs: Vec<Output>) -> Result<Share, RegionalError> {
        self.inner
            .aggregate(&(), outputs.into_iter().map(|o| o.0))
            .map(Share)
            .map_err(vdaf_err)
    }

    /// Decodes an aggregate share received from the other aggregator.
    pub fn decode_share(&self, bytes: &[u8]) -> Result<Share, RegionalError> {
        if bytes.len() != self.cells * Field128::ENCODED_SIZE {
            return Err(RegionalError::Malformed("aggregate share"));
        }
        AggregateShare::get_decoded_with_param(&(&self.inner, &()), bytes)
            .map(Share)
            .map_err(|_| RegionalError::Malformed("aggregate share"))
    }

    /// The leader (collector) adds the two aggregate shares of `reports` reports: each cell's
    /// noisy sum, as a signed integer (noise may take a small sum below zero).
    pub fn unshard(&self, shares: [Share; 2], reports: usize) -> Result<Vec<i128>, RegionalError> {
        let sums = self
            .inner
            .unshard(&(), shares.into_iter().map(|s| s.0), reports)
            .map_err(vdaf_err)?;
        let p = Field128::modulus();
        Ok(sums
            .into_iter()
            .map(|v| {
                if v > p / 2 {
                    -((p - v) as i128)
                } else {
                    v as i128
                }
            })
            .collect())
    }
}

impl Share {
    /// Encoded for the wire.
    pub fn encode(&self) -> Result<Vec<u8>, RegionalError> {
        self.0.get_encoded().map_err(vdaf_err)
    }
}

/// Adds discrete Gaussian noise of standard deviation `sigma_micro / 10⁶` to every element of
/// `share` (libprio's exact CKS20 sampler, seeded from the operating system), reduced into the
/// field: the sum of the two shares then carries both aggregators' noise.
pub fn add_noise(share: &mut Share, sigma_micro: u64) -> Result<(), RegionalError> {
    if sigma_micro == 0 {
        return Err(RegionalError::Parameters("sigma must be positive"));
    }
    let r = Rational::from_unsigned(u128::from(sigma_micro), u128::from(SIGMA_SCALE))
        .map_err(|e| RegionalError::Noise(e.to_string()))?;
    let dist = DiscreteGaussian::new(r).map_err(|e| RegionalError::Noise(e.to_string()))?;
    let mut rng = StdRng::from_seed(random_bytes::<32>()?);
    let mut elements: Vec<Field128> = share.0.as_ref().to_vec();
    for e in elements.iter_mut() {
        let n = dist
            .sample(&mut rng)
            .to_i128()
            .ok_or_else(|| RegionalError::Noise("noise outside i128".into()))?;
        let magnitude = Field128::from(
            <Field128 as FieldElementWithInteger>::Integer::try_from(n.unsigned_abs())
                .map_err(|_| RegionalError::Noise("noise outside the field".into()))?,
        );
        if n >= 0 {
            *e += magnitude;
        } else {
            *e -= magnitude;
        }
    }
    share.0 = AggregateShare::from(elements);
    Ok(())
}

/// Test-harness support: a report whose leader input share has `delta` added to its first
/// field element, i.e. a node claiming a cell encoding outside the range the proof allows. Used
/// by the integration tests to play a malicious node; an honest node never calls it.
pub fn tamper_leader_share(report: &mut Report, delta: u64) -> Result<(), RegionalError> {
    let size = Field128::ENCODED_SIZE;
    let first = report
        .leader_share
        .get(..size)
        .ok_or(RegionalError::Malformed("input share"))?;
    let x = Field128::get_decoded(first).map_err(|_| RegionalError::Malformed("input share"))?;
    let y = x + Field128::from(u128::from(delta));
    let mut enc = Vec::with_capacity(size);
    y.encode(&mut enc).map_err(vdaf_err)?;
    report.leader_share.splice(..size, enc);
    Ok(())
}

/// Noise scale of a regional result: both aggregators' noise, √(σ² + σ²).
pub fn total_sigma(sigma_micro: u64) -> f64 {
    let s = sigma_micro as f64 / SIGMA_SCALE as f64;
    (2.0 * s * s).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vdaf: &Vdaf, reports: &[Report], noise: Option<u64>) -> (Vec<i128>, usize) {
        let key: [u8; 32] = random_bytes().unwrap();
        let mut outs = [Vec::new(), Vec::new()];
        for r in reports {
            let (ls, lv) = vdaf
                .verify_start(
                    &key,
                    "q1",
                    LEADER,
                    &r.nonce,
                    &r.public_share,
                    &r.leader_share,
                )
                .unwrap();
            let (hs, hv) = vdaf
                .verify_start(
                    &key,
                    "q1",
                    HELPER,
                    &r.nonce,
                    &r.public_share,
                    &r.helper_share,
                )
                .unwrap();
            let l = vdaf.verify_finish("q1", ls, &lv, &hv);
            let h = vdaf.verify_finish("q1", hs, &lv, &hv);
            assert_eq!(l.is_ok(), h.is_ok());
            if let (Ok(l), Ok(h)) = (l, h) {
                outs[0].push(l);
                outs[1].push(h);
            }
        }
        let n = outs[0].len();
        let [o0, o1] = outs;
        let mut s0 = vdaf.aggregate(o0).unwrap();
        let mut s1 = vdaf.aggregate(o1).unwrap();
        if let Some(sigma) = noise {
            add_noise(&mut s0, sigma).unwrap();
            add_noise(&mut s1, sigma).unwrap();
        }
        let s1 = vdaf.decode_share(&s1.encode().unwrap()).unwrap();
        (vdaf.unshard([s0, s1], n).unwrap(), n)
    }

    #[test]
    fn sums_exactly_without_noise_and_drops_a_tampered_report() {
        let vdaf = Vdaf::new(4, 100).unwrap();
        let a = vdaf.shard("q1", &[1, 0, 100, 7]).unwrap();
        let b = vdaf.shard("q1", &[2, 3, 0, 7]).unwrap();
        let mut bad = vdaf.shard("q1", &[50, 50, 50, 50]).unwrap();
        tamper_leader_share(&mut bad, 1).unwrap();
        let (sum, n) = run(&vdaf, &[a, b, bad], None);
        assert_eq!(n, 2);
        assert_eq!(sum, vec![3, 3, 100, 14]);
        assert!(vdaf.shard("q1", &[101, 0, 0, 0]).is_err());
    }

    #[test]
    fn a_report_for_another_query_does_not_verify() {
        let vdaf = Vdaf::new(3, 10).unwrap();
        let r = vdaf.shard("other-query", &[1, 2, 3]).unwrap();
        let (_, n) = run(&vdaf, &[r], None);
        assert_eq!(n, 0);
    }

    #[test]
    fn noise_is_centred_with_the_published_scale() {
        let vdaf = Vdaf::new(400, 10).unwrap();
        let r = vdaf.shard("q1", &[5; 400]).unwrap();
        let (sum, _) = run(&vdaf, &[r], Some(3_000_000));
        let errs: Vec<f64> = sum.iter().map(|v| (*v - 5) as f64).collect();
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        let var = errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64;
        // total σ = 3·√2 ≈ 4.24, variance 18; 400 draws: mean s.e. 0.21, variance s.e. ≈ 1.3
        assert!(mean.abs() < 1.1, "mean {mean}");
        assert!((var - 18.0).abs() < 6.0, "variance {var}");
        assert!((total_sigma(3_000_000) - 4.2426).abs() < 1e-3);
    }

    #[test]
    fn malformed_peer_bytes_are_errors() {
        let vdaf = Vdaf::new(3, 10).unwrap();
        let r = vdaf.shard("q1", &[1, 2, 3]).unwrap();
        let key = [0u8; 32];
        assert!(
            vdaf.verify_start(
                &key[..5],
                "q1",
                0,
                &r.nonce,
                &r.public_share,
                &r.leader_share
            )
            .is_err()
        );
        assert!(
            vdaf.verify_start(
                &key,
                "q1",
                0,
                &r.nonce[..3],
                &r.public_share,
                &r.leader_share
            )
            .is_err()
        );
        assert!(
            vdaf.verify_start(
                &key,
                "q1",
                0,
                &r.nonce,
                &r.public_share,
                &r.leader_share[..10]
            )
            .is_err()
        );
        assert!(vdaf.decode_share(&[0u8; 7]).is_err());
        assert!(Vdaf::new(0, 10).is_err());
        assert!(Vdaf::new(3, 0).is_err());
    }
}
