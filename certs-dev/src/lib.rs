//! A development-only certificate authority for VRS Federation.
//!
//! **Never use these certificates in production.** The CA key sits in a plain file next to the
//! certificates it signed, keys are made on whatever machine runs the tool, and nothing here is
//! audited, revoked or rotated. Production issuance is described in `docs/CERTIFICATES.md`.
//!
//! [`generate`] makes, in one directory:
//!
//! - `ca.pem`, `ca.key`: a self-signed CA (ECDSA P-256);
//! - `node.<iso3>.vrs.test.pem` / `.key` per node (SAN `node.<iso3>.vrs.test`, server auth);
//! - `coordinator.<name>.vrs.test.pem` / `.key` (SAN `coordinator.<name>.vrs.test`, client auth);
//! - `coordinator.<name>.signing.pk8` / `.pub`: the coordinator's Ed25519 query-signing key
//!   (PKCS#8 DER) and its 32-byte public key in hex (no trailing newline).
//!
//! Every key file is written with mode 0600; every file is written to a temporary name and renamed,
//! so a failed run never leaves a half-written file. [`DevPki::issue_extra`] makes certificates for
//! negative tests: another SAN, already expired, or signed by an unrelated CA.
#![forbid(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use time::{Duration, OffsetDateTime};

/// Validity used when the caller does not choose one.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;
/// Longest validity the tool accepts (ten years).
pub const MAX_VALIDITY_DAYS: u32 = 3650;

/// DNS suffix of every identity in the federation.
const SUFFIX: &str = "vrs.test";
/// Common name of the development CA (also used by the unrelated CA of [`ExtraKind::OtherCa`], so
/// that a wrong-CA certificate names the right issuer and fails only on its signature).
const CA_COMMON_NAME: &str = "VRS Federation development CA (not for production)";
/// Certificates start this far in the past, to tolerate small clock differences.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Errors from generating or loading the development PKI.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A node country code is not three ASCII letters.
    #[error("invalid country code {0:?}: expected three letters (ISO 3166-1 alpha-3)")]
    InvalidCountry(String),
    /// A coordinator name is not a lowercase DNS label.
    #[error(
        "invalid coordinator name {0:?}: expected 1-63 lowercase letters, digits or '-', not starting or ending with '-'"
    )]
    InvalidName(String),
    /// The validity period is zero or longer than [`MAX_VALIDITY_DAYS`].
    #[error("validity of {0} days is out of range (1..={MAX_VALIDITY_DAYS})")]
    InvalidValidity(u32),
    /// No node country was given.
    #[error("at least one node country is required")]
    NoNodes,
    /// A node country was given twice.
    #[error("node country {0} is listed twice")]
    DuplicateNode(String),
    /// An extra certificate's output name is empty or not a plain file name.
    #[error("invalid output name {0:?}: expected a plain file name without '/' or a leading '.'")]
    InvalidOutName(String),
    /// The directory already holds a CA and overwriting was not requested.
    #[error(
        "{} already holds a CA; pass --force to replace it (certificates from the old CA stop working)",
        .0.display()
    )]
    CaExists(PathBuf),
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// rcgen could not make, parse or sign a certificate or key.
    #[error("certificate generation failed")]
    Certificate(#[from] rcgen::Error),
    /// ring could not generate the Ed25519 signing key.
    #[error("cannot generate the Ed25519 query-signing key")]
    SigningKey,
}

/// Whether [`generate_with`] may replace an existing CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`CertsError::CaExists`] if `ca.pem` or `ca.key` exists.
    Refuse,
    /// Replace the CA and every certificate this run issues.
    Force,
}

/// Which kind of extra certificate [`DevPki::issue_extra`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// Signed by the development CA and currently valid.
    Valid,
    /// Signed by the development CA, but expired a day ago.
    Expired,
    /// Currently valid, but signed by a fresh CA unrelated to the development CA (same CA name).
    OtherCa,
    /// Currently valid, but issued by an intermediate CA that the development CA issued: a chain
    /// one longer than the CA's `pathlen:0` allows. The PEM holds the leaf, then the intermediate.
    ViaIntermediate,
    /// Signed by the development CA and valid, with a second DNS name (`other.vrs.test`) after
    /// `san`: an ambiguous identity.
    TwoDnsNames,
}

/// The files a coordinator needs: its TLS identity and its query-signing key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorPaths {
    /// The federation CA certificate (PEM).
    pub ca: PathBuf,
    /// The coordinator's certificate (PEM).
    pub cert: PathBuf,
    /// The coordinator's TLS private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// The coordinator's Ed25519 query-signing key (PKCS#8 DER).
    pub signing_key: PathBuf,
    /// The Ed25519 public key as 64 hex digits, no trailing newline.
    pub signing_pub: PathBuf,
}

/// A development PKI on disk, with the CA key loaded so it can issue more certificates.
#[derive(Debug)]
pub struct DevPki {
    /// The directory holding every file.
    pub dir: PathBuf,
    /// The coordinator name (the `<name>` of `coordinator.<name>.vrs.test`).
    pub coordinator: String,
    /// The node countries, upper-case ISO 3166-1 alpha-3.
    pub nodes: Vec<String>,
    /// The files written by this run, in order (empty after [`DevPki::open`]).
    pub written: Vec<PathBuf>,
    validity_days: u32,
    ca: Issuer<'static, KeyPair>,
}

/// The certificate identity (SAN) of a node: `node.<iso3 lower>.vrs.test`.
pub fn node_san(iso3: &str) -> String {
    format!("node.{}.{SUFFIX}", iso3.to_ascii_lowercase())
}

/// The certificate identity (SAN) of a coordinator: `coordinator.<name>.vrs.test`.
pub fn coordinator_san(name: &str) -> String {
    format!("coordinator.{name}.{SUFFIX}")
}

/// Generates a fresh development PKI in `out` (created if missing); refuses to replace an
/// existing CA. See [`generate_with`].
pub fn generate(
    out: &Path,
    coordinator: &str,
    nodes: &[&str],
    validity_days: u32,
) -> Result<DevPki, CertsError> {
    generate_with(out, coordinator, nodes, validity_days, Overwrite::Refuse)
}

/// Generates a CA, one certificate per node, the coordinator's certificate and its Ed25519
/// query-signing key, all valid for `validity_days` from now.
pub fn generate_with(
    out: &Path,
    coordinator: &str,
    nodes: &[&str],
    validity_days: u32,
    overwrite: Overwrite,
) -> Result<DevPki, CertsError> {
    check_name(coordinator)?;
    check_validity(validity_days)?;
    if nodes.is_empty() {
        return Err(CertsError::NoNodes);
    }
    let mut countries: Vec<String> = Vec::with_capacity(nodes.len());
    for iso3 in nodes {
        let iso3 = check_country(iso3)?;
        if countries.contains(&iso3) {
            return Err(CertsError::DuplicateNode(iso3));
        }
        countries.push(iso3);
    }
    if overwrite == Overwrite::Refuse {
        for name in ["ca.pem", "ca.key"] {
            let path = out.join(name);
            if path.exists() {
                return Err(CertsError::CaExists(path));
            }
        }
    }
    fs::create_dir_all(out).map_err(|source| CertsError::Write {
        path: out.to_path_buf(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params(validity_days);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut pki = DevPki {
        dir: out.to_path_buf(),
        coordinator: coordinator.to_owned(),
        nodes: countries,
        written: Vec::new(),
        validity_days,
        ca: Issuer::new(ca_params, ca_key),
    };

    // Leaves first and the CA last: a failed run does not leave a new CA without its leaves.
    for iso3 in pki.nodes.clone() {
        let san = node_san(&iso3);
        let (cert, key) = pki.leaf(&san, &[ExtendedKeyUsagePurpose::ServerAuth], false)?;
        pki.write_pair(&san, &cert, &key)?;
    }
    let san = coordinator_san(coordinator);
    let (cert, key) = pki.leaf(&san, &[ExtendedKeyUsagePurpose::ClientAuth], false)?;
    pki.write_pair(&san, &cert, &key)?;

    let (pkcs8, public) = signing_key_pair()?;
    let paths = pki.coordinator_paths();
    pki.write(&paths.signing_key, &pkcs8, Secret::Yes)?;
    pki.write(
        &paths.signing_pub,
        hex::encode(public).as_bytes(),
        Secret::No,
    )?;

    pki.write(&out.join("ca.key"), ca_key_pem.as_bytes(), Secret::Yes)?;
    pki.write(&out.join("ca.pem"), ca_cert.pem().as_bytes(), Secret::No)?;
    Ok(pki)
}

impl DevPki {
    /// Loads an existing development PKI from `dir` (reading `ca.pem` and `ca.key`) so that more
    /// certificates can be issued; extras are valid for [`DEFAULT_VALIDITY_DAYS`].
    pub fn open(dir: &Path, coordinator: &str, nodes: &[&str]) -> Result<DevPki, CertsError> {
        check_name(coordinator)?;
        let nodes = nodes
            .iter()
            .map(|iso3| check_country(iso3))
            .collect::<Result<Vec<_>, _>>()?;
        let ca_pem = read_to_string(&dir.join("ca.pem"))?;
        let ca_key = KeyPair::from_pem(&read_to_string(&dir.join("ca.key"))?)?;
        let ca = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
        Ok(DevPki {
            dir: dir.to_path_buf(),
            coordinator: coordinator.to_owned(),
            nodes,
            written: Vec::new(),
            validity_days: DEFAULT_VALIDITY_DAYS,
            ca,
        })
    }

    /// The CA certificate (PEM).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `(ca, cert, key)` for the node of country `iso3` (any case).
    pub fn node_paths(&self, iso3: &str) -> (PathBuf, PathBuf, PathBuf) {
        let stem = node_san(iso3);
        (
            self.ca_path(),
            self.dir.join(format!("{stem}.pem")),
            self.dir.join(format!("{stem}.key")),
        )
    }

    /// The coordinator's certificate, TLS key and query-signing key pair.
    pub fn coordinator_paths(&self) -> CoordinatorPaths {
        let stem = coordinator_san(&self.coordinator);
        let signing = format!("coordinator.{}.signing", self.coordinator);
        CoordinatorPaths {
            ca: self.ca_path(),
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}.key")),
            signing_key: self.dir.join(format!("{signing}.pk8")),
            signing_pub: self.dir.join(format!("{signing}.pub")),
        }
    }

    /// Issues a certificate for `san` (usable for both client and server auth) and writes it to
    /// `<dir>/<out_name>.pem` and `<dir>/<out_name>.key`; returns `(cert, key)`.
    ///
    /// For negative tests: a wrong SAN ([`ExtraKind::Valid`] with another name), an expired
    /// certificate, or one from an unrelated CA.
    pub fn issue_extra(
        &self,
        san: &str,
        kind: ExtraKind,
        out_name: &str,
    ) -> Result<(PathBuf, PathBuf), CertsError> {
        if out_name.is_empty() || out_name.starts_with('.') || out_name.contains(['/', '\\']) {
            return Err(CertsError::InvalidOutName(out_name.to_owned()));
        }
        let usages = [
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let (cert, key) = match kind {
            ExtraKind::Valid => self.leaf(san, &usages, false)?,
            ExtraKind::Expired => self.leaf(san, &usages, true)?,
            ExtraKind::OtherCa => {
                let other = Issuer::new(ca_params(self.validity_days), KeyPair::generate()?);
                let key = KeyPair::generate()?;
                let cert = leaf_params(san, &usages, self.validity_days, false)?
                    .signed_by(&key, &other)?;
                (cert.pem(), key.serialize_pem())
            }
            ExtraKind::ViaIntermediate => {
                let mut params = ca_params(self.validity_days);
                let mut dn = DistinguishedName::new();
                dn.push(DnType::OrganizationName, "VRS Federation (development)");
                dn.push(
                    DnType::CommonName,
                    "VRS Federation intermediate (not allowed)",
                );
                params.distinguished_name = dn;
                let inter_key = KeyPair::generate()?;
                let inter_cert = params.clone().signed_by(&inter_key, &self.ca)?;
                let intermediate = Issuer::new(params, inter_key);
                let key = KeyPair::generate()?;
                let cert = leaf_params(san, &usages, self.validity_days, false)?
                    .signed_by(&key, &intermediate)?;
                (
                    format!("{}{}", cert.pem(), inter_cert.pem()),
                    key.serialize_pem(),
                )
            }
            ExtraKind::TwoDnsNames => {
                let key = KeyPair::generate()?;
                let mut params = leaf_params(san, &usages, self.validity_days, false)?;
                params
                    .subject_alt_names
                    .push(rcgen::SanType::DnsName("other.vrs.test".try_into()?));
                let cert = params.signed_by(&key, &self.ca)?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let cert_path = self.dir.join(format!("{out_name}.pem"));
        let key_path = self.dir.join(format!("{out_name}.key"));
        write_atomic(&key_path, key.as_bytes(), Secret::Yes)?;
        write_atomic(&cert_path, cert.as_bytes(), Secret::No)?;
        Ok((cert_path, key_path))
    }

    /// Makes a leaf key and certificate signed by this CA; returns `(cert PEM, key PEM)`.
    fn leaf(
        &self,
        san: &str,
        usages: &[ExtendedKeyUsagePurpose],
        expired: bool,
    ) -> Result<(String, String), CertsError> {
        let key = KeyPair::generate()?;
        let cert =
            leaf_params(san, usages, self.validity_days, expired)?.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes `<stem>.pem` and `<stem>.key`.
    fn write_pair(&mut self, stem: &str, cert: &str, key: &str) -> Result<(), CertsError> {
        self.write(
            &self.dir.join(format!("{stem}.key")),
            key.as_bytes(),
            Secret::Yes,
        )?;
        self.write(
            &self.dir.join(format!("{stem}.pem")),
            cert.as_bytes(),
            Secret::No,
        )
    }

    /// Writes a file and records it in [`DevPki::written`].
    fn write(&mut self, path: &Path, contents: &[u8], secret: Secret) -> Result<(), CertsError> {
        write_atomic(path, contents, secret)?;
        self.written.push(path.to_path_buf());
        Ok(())
    }
}

/// Whether a file holds a secret (mode 0600) or public material (mode 0644).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secret {
    Yes,
    No,
}

/// Writes `contents` to a temporary file beside `path` (created with the right mode), then renames
/// it over `path`, so readers see the old file or the whole new one.
fn write_atomic(path: &Path, contents: &[u8], secret: Secret) -> Result<(), CertsError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertsError::Write { path, source }
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    // A leftover from a crashed run may have another mode; start afresh.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(werr(&tmp)(e)),
        _ => {}
    }
    let mode = match secret {
        Secret::Yes => 0o600,
        Secret::No => 0o644,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(werr(&tmp))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(werr(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(werr(path))
}

fn read_to_string(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| CertsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parameters of the (development or unrelated) CA.
fn ca_params(validity_days: u32) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "VRS Federation (development)");
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + Duration::days(i64::from(validity_days));
    params
}

/// Parameters of a leaf certificate for `san`; `expired` makes one that ended a day ago.
fn leaf_params(
    san: &str,
    usages: &[ExtendedKeyUsagePurpose],
    validity_days: u32,
    expired: bool,
) -> Result<CertificateParams, CertsError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::new(vec![san.to_owned()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "VRS Federation (development)");
    dn.push(DnType::CommonName, san);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    if expired {
        params.not_before = now - Duration::days(30);
        params.not_after = now - Duration::days(1);
    } else {
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + Duration::days(i64::from(validity_days));
    }
    Ok(params)
}

/// A fresh Ed25519 key pair: `(PKCS#8 DER, 32-byte public key)`.
fn signing_key_pair() -> Result<(Vec<u8>, Vec<u8>), CertsError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CertsError::SigningKey)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| CertsError::SigningKey)?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// Accepts three ASCII letters in any case; returns them upper-case.
fn check_country(iso3: &str) -> Result<String, CertsError> {
    if iso3.len() == 3 && iso3.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(iso3.to_ascii_uppercase())
    } else {
        Err(CertsError::InvalidCountry(iso3.to_owned()))
    }
}

/// Accepts a lowercase DNS label.
fn check_name(name: &str) -> Result<(), CertsError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CertsError::InvalidName(name.to_owned()))
    }
}

fn check_validity(days: u32) -> Result<(), CertsError> {
    if (1..=MAX_VALIDITY_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(CertsError::InvalidValidity(days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The DNS SANs and validity end (Unix seconds) of a PEM certificate file.
    fn inspect(path: &Path) -> (Vec<String>, i64) {
        let pem = fs::read(path).unwrap();
        let (_, pem) = parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(s) => Some(s.to_string()),
                _ => None,
            })
            .collect();
        (sans, cert.validity().not_after.timestamp())
    }

    #[test]
    fn generates_every_file_with_private_keys_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = generate(tmp.path(), "bali-rc", &["THA", "idn"], 30).unwrap();
        assert_eq!(pki.nodes, ["THA", "IDN"]);
        assert_eq!(pki.written.len(), 2 * 2 + 2 + 2 + 2);

        for iso3 in ["THA", "IDN"] {
            let (ca, cert, key) = pki.node_paths(iso3);
            assert_eq!(ca, tmp.path().join("ca.pem"));
            assert_eq!(
                cert,
                tmp.path()
                    .join(format!("node.{}.vrs.test.pem", iso3.to_lowercase()))
            );
            assert_eq!(mode(&key), 0o600);
            assert_eq!(mode(&cert), 0o644);
        }
        let c = pki.coordinator_paths();
        assert!(c.cert.ends_with("coordinator.bali-rc.vrs.test.pem"));
        assert!(c.signing_key.ends_with("coordinator.bali-rc.signing.pk8"));
        assert_eq!(mode(&c.key), 0o600);
        assert_eq!(mode(&c.signing_key), 0o600);
        assert_eq!(mode(&tmp.path().join("ca.key")), 0o600);
        for path in &pki.written {
            assert!(path.is_file(), "{}", path.display());
        }
        // No temporary files are left behind.
        let leftovers = fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn certificates_carry_the_expected_san() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = generate(tmp.path(), "bali-rc", &["THA"], 30).unwrap();
        let (_, cert, _) = pki.node_paths("tha");
        assert_eq!(inspect(&cert).0, ["node.tha.vrs.test"]);
        let (sans, _) = inspect(&pki.coordinator_paths().cert);
        assert_eq!(sans, ["coordinator.bali-rc.vrs.test"]);
    }

    #[test]
    fn signing_key_matches_its_public_half() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = generate(tmp.path(), "bali-rc", &["THA"], 30).unwrap();
        let c = pki.coordinator_paths();
        let pkcs8 = fs::read(&c.signing_key).unwrap();
        let public = fs::read_to_string(&c.signing_pub).unwrap();
        assert_eq!(public.len(), 64);
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(hex::encode(pair.public_key().as_ref()), public);
    }

    #[test]
    fn refuses_to_overwrite_a_ca_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        generate(tmp.path(), "bali-rc", &["THA"], 30).unwrap();
        let before = fs::read(tmp.path().join("ca.pem")).unwrap();
        let err = generate(tmp.path(), "bali-rc", &["THA"], 30).unwrap_err();
        assert!(matches!(err, CertsError::CaExists(_)), "{err}");
        assert_eq!(fs::read(tmp.path().join("ca.pem")).unwrap(), before);

        generate_with(tmp.path(), "bali-rc", &["THA"], 30, Overwrite::Force).unwrap();
        assert_ne!(fs::read(tmp.path().join("ca.pem")).unwrap(), before);
        assert_eq!(mode(&tmp.path().join("ca.key")), 0o600);
    }

    #[test]
    fn rejects_bad_arguments() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let bad = [
            generate(dir, "Bali RC", &["THA"], 30),
            generate(dir, "bali-rc", &["TH"], 30),
            generate(dir, "bali-rc", &["T1A"], 30),
            generate(dir, "bali-rc", &["THA", "tha"], 30),
            generate(dir, "bali-rc", &[], 30),
            generate(dir, "bali-rc", &["THA"], 0),
        ];
        for result in bad {
            assert!(result.is_err());
        }
        assert!(!dir.join("ca.pem").exists());
    }

    #[test]
    fn issues_extras_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        generate(tmp.path(), "bali-rc", &["THA"], 30).unwrap();
        let pki = DevPki::open(tmp.path(), "bali-rc", &["THA"]).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();

        let (cert, key) = pki
            .issue_extra("node.xyz.vrs.test", ExtraKind::Valid, "wrong-san")
            .unwrap();
        assert_eq!(mode(&key), 0o600);
        let (sans, not_after) = inspect(&cert);
        assert_eq!(sans, ["node.xyz.vrs.test"]);
        assert!(not_after > now);

        let (cert, _) = pki
            .issue_extra(
                "coordinator.bali-rc.vrs.test",
                ExtraKind::Expired,
                "expired",
            )
            .unwrap();
        assert!(inspect(&cert).1 < now);

        let (cert, _) = pki
            .issue_extra("coordinator.bali-rc.vrs.test", ExtraKind::OtherCa, "rogue")
            .unwrap();
        assert!(inspect(&cert).1 > now);

        assert!(
            pki.issue_extra("x.vrs.test", ExtraKind::Valid, "../x")
                .is_err()
        );
        assert!(pki.issue_extra("x.vrs.test", ExtraKind::Valid, "").is_err());
    }
}
