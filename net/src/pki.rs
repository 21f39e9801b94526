//! The cluster PKI: one self-signed CA per cluster, which issues node and client certificates.
//!
//! `mooseng admin init` creates a directory of PEM files with [`Ca::generate`], [`Ca::save`],
//! [`Ca::issue_node`] and [`Ca::issue_client`]. Roles are DNS names in the certificates'
//! subject alternative names:
//!
//! | certificate | SANs | extended key usage |
//! |---|---|---|
//! | node `n` | `node-<n>.mooseng`, [`NODE_ROLE_NAME`] | server + client auth |
//! | client `name` | `<name>.client.mooseng`, [`CLIENT_ROLE_NAME`] | client auth only |
//!
//! Every node certificate is valid for [`SERVER_NAME`], the name clients dial, so a client
//! needs only the address of a node. Certificates never expire (rcgen's default validity,
//! 1975–4096): rotation and revocation are out of scope for now.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, UnixTime};

use crate::error::{NetError, Result};

/// The name clients dial: every node certificate is valid for it.
pub const SERVER_NAME: &str = "node.mooseng";
/// The role marker in every node certificate (raft and peer ports accept only this role).
pub const NODE_ROLE_NAME: &str = "node.mooseng";
/// The role marker in every client certificate.
pub const CLIENT_ROLE_NAME: &str = "client.mooseng";
/// Role name every chunkserver certificate is valid for, and the name data ports are dialled by.
pub const CHUNKSERVER_ROLE_NAME: &str = "chunkserver.mooseng";

/// File name of the CA certificate in a PKI directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key in a PKI directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

const CA_CN_SUFFIX: &str = " cluster CA";

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The end-entity certificate (PEM, one `CERTIFICATE` block).
    pub cert_pem: String,
    /// Its PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// Writes `<dir>/<stem>.pem` and `<dir>/<stem>.key` (mode 0600), creating `dir` if needed and
    /// replacing existing files.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<()> {
        create_dir(dir)?;
        write_file(
            &dir.join(format!("{stem}.key")),
            &self.key_pem,
            Secret::Yes,
            Overwrite::Yes,
        )?;
        write_file(
            &dir.join(format!("{stem}.pem")),
            &self.cert_pem,
            Secret::No,
            Overwrite::Yes,
        )
    }

    /// Reads `<dir>/<stem>.pem` and `<dir>/<stem>.key` and checks that both parse.
    pub fn load(dir: &Path, stem: &str) -> Result<Identity> {
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        let identity = Identity {
            cert_pem: read_file(&cert_path)?,
            key_pem: read_file(&key_path)?,
        };
        identity.cert_chain().map_err(|e| NetError::pki(&cert_path, e))?;
        identity.private_key().map_err(|e| NetError::pki(&key_path, e))?;
        Ok(identity)
    }

    /// The certificate chain in DER (the end-entity certificate first).
    pub(crate) fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        parse_certs(&self.cert_pem)
    }

    /// The private key in DER.
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| format!("parse private key: {e}"))
    }
}

/// The cluster certificate authority: its certificate and the key that signs node and client
/// certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// Generates a self-signed CA whose common name is `"<cluster> cluster CA"`.
    pub fn generate(cluster: &str) -> Result<Ca> {
        if cluster.is_empty() {
            return Err(NetError::Certificate("cluster name is empty".into()));
        }
        let params = ca_params(&format!("{cluster}{CA_CN_SUFFIX}"))?;
        let key = KeyPair::generate().map_err(cert_err("generate CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(cert_err("self-sign CA certificate"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Rebuilds a CA from the PEM written by [`Ca::save`], checking that the key signs
    /// certificates that chain to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        parse_ca(cert_pem, key_pem).map_err(|(_, reason)| NetError::Certificate(reason))
    }

    /// Reads `<dir>/ca.pem` and `<dir>/ca.key`.
    pub fn load(dir: &Path) -> Result<Ca> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = read_file(&cert_path)?;
        let key_pem = read_file(&key_path)?;
        parse_ca(&cert_pem, &key_pem).map_err(|(part, reason)| {
            let path = match part {
                CaPart::Cert => cert_path,
                CaPart::Key => key_path,
                CaPart::Pair => dir.to_path_buf(),
            };
            NetError::Pki { path, reason }
        })
    }

    /// Writes `<dir>/ca.pem` and `<dir>/ca.key` (mode 0600), creating `dir` if needed.
    ///
    /// Refuses to replace an existing CA: overwriting it would orphan every certificate it issued.
    pub fn save(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        for file in [CA_CERT_FILE, CA_KEY_FILE] {
            let path = dir.join(file);
            if path.exists() {
                return Err(NetError::pki(
                    path,
                    "refusing to overwrite an existing cluster CA",
                ));
            }
        }
        write_file(&dir.join(CA_KEY_FILE), &self.key_pem, Secret::Yes, Overwrite::No)?;
        write_file(&dir.join(CA_CERT_FILE), &self.cert_pem, Secret::No, Overwrite::No)
    }

    /// The CA certificate (PEM), which every node and client trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues the certificate of node `node_id`: valid for `node-<id>.mooseng` and for
    /// [`NODE_ROLE_NAME`] (which is also [`SERVER_NAME`]), usable as server and client.
    pub fn issue_node(&self, node_id: u64) -> Result<Identity> {
        let own = format!("node-{node_id}.mooseng");
        self.issue(
            &own,
            vec![own.clone(), NODE_ROLE_NAME.to_string()],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// Issues the certificate of chunkserver `id`: valid for `cs-<id>.mooseng` and for
    /// [`CHUNKSERVER_ROLE_NAME`] (the name clients dial a data port by), usable as server and
    /// client. It is not valid for [`NODE_ROLE_NAME`], so raft ports refuse it.
    pub fn issue_chunkserver(&self, id: u64) -> Result<Identity> {
        let own = format!("cs-{id}.mooseng");
        self.issue(
            &own,
            vec![own.clone(), CHUNKSERVER_ROLE_NAME.to_string()],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// Issues a client certificate for `name` (one DNS label: letters, digits, `-`): valid for
    /// [`CLIENT_ROLE_NAME`] and `<name>.client.mooseng`, usable only as a client.
    pub fn issue_client(&self, name: &str) -> Result<Identity> {
        let own = format!("{name}.{CLIENT_ROLE_NAME}");
        let is_label = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !is_label || DnsName::try_from(own.as_str()).is_err() {
            return Err(NetError::Certificate(format!(
                "client name {name:?} is not a DNS label (letters, digits, '-', at most 63)"
            )));
        }
        self.issue(
            &own,
            vec![CLIENT_ROLE_NAME.to_string(), own.clone()],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue(&self, cn: &str, sans: Vec<String>, ekus: Vec<ExtendedKeyUsagePurpose>) -> Result<Identity> {
        let mut params = CertificateParams::new(sans).map_err(cert_err("certificate names"))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        let key = KeyPair::generate().map_err(cert_err("generate key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_err("sign certificate"))?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn ca_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA parameters"))?;
    // Path length 0: the CA signs end-entity certificates only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Which input of [`parse_ca`] was at fault.
enum CaPart {
    Cert,
    Key,
    Pair,
}

/// Parses a CA written by [`Ca::save`]. rcgen (without its x509-parser feature) cannot read a
/// certificate back, so the issuer is rebuilt from the certificate's common name, which must be
/// its only subject attribute (as [`Ca::generate`] writes it); a probe certificate then proves
/// that certificates issued with the key chain to the certificate.
fn parse_ca(cert_pem: &str, key_pem: &str) -> Result<Ca, (CaPart, String)> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| (CaPart::Cert, format!("parse certificate: {e}")))?;
    let parsed = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| (CaPart::Cert, format!("parse certificate: {e}")))?;
    let cn = single_common_name(parsed.subject()).ok_or_else(|| {
        (
            CaPart::Cert,
            "subject is not a single UTF-8 common name (not a MooseNG cluster CA)".to_string(),
        )
    })?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| (CaPart::Key, format!("parse private key: {e}")))?;
    let params = ca_params(cn).map_err(|e| (CaPart::Cert, e.to_string()))?;
    let ca = Ca {
        cert_pem: cert_pem.to_string(),
        key_pem: key_pem.to_string(),
        issuer: Issuer::new(params, key),
    };
    let probe = ca.issue_node(0).map_err(|e| (CaPart::Pair, e.to_string()))?;
    chains_to(&probe, &der).map_err(|e| {
        (
            CaPart::Pair,
            format!("{CA_KEY_FILE} does not match {CA_CERT_FILE}: {e}"),
        )
    })?;
    Ok(ca)
}

/// Checks that `leaf` chains to `ca` (signature, names, validity, client-auth usage).
fn chains_to(leaf: &Identity, ca: &CertificateDer<'_>) -> Result<(), String> {
    let anchor = webpki::anchor_from_trusted_cert(ca).map_err(|e| e.to_string())?;
    let chain = leaf.cert_chain()?;
    let end_entity = chain.first().ok_or("no certificate")?;
    let end_entity = webpki::EndEntityCert::try_from(end_entity).map_err(|e| e.to_string())?;
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    end_entity
        .verify_for_usage(
            algs.all,
            &[anchor],
            &[],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The value of a DER `Name` (without its outer SEQUENCE header, as webpki returns it) that
/// holds exactly one attribute, a UTF8String common name.
fn single_common_name(name: &[u8]) -> Option<&str> {
    const SET: u8 = 0x31;
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const UTF8_STRING: u8 = 0x0c;
    const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03]; // 2.5.4.3

    let (rdn, rest) = der_tlv(name, SET)?;
    let (attribute, rest_of_rdn) = der_tlv(rdn, SEQUENCE)?;
    let (oid, value) = der_tlv(attribute, OID)?;
    let (text, rest_of_value) = der_tlv(value, UTF8_STRING)?;
    let single = rest.is_empty() && rest_of_rdn.is_empty() && rest_of_value.is_empty();
    (single && oid == COMMON_NAME).then_some(())?;
    std::str::from_utf8(text).ok()
}

/// Splits one DER element with tag `tag` (definite length of at most 4 bytes) off `input`:
/// returns its value and the rest.
fn der_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if found != tag {
        return None;
    }
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        (
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Parses every `CERTIFICATE` block of `pem` (at least one).
pub(crate) fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("parse certificate: {e}"))?;
    if certs.is_empty() {
        return Err("parse certificate: no CERTIFICATE block".into());
    }
    Ok(certs)
}

fn cert_err(action: &'static str) -> impl Fn(rcgen::Error) -> NetError {
    move |e| NetError::Certificate(format!("{action}: {e}"))
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| NetError::pki(path, format!("read: {e}")))
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| NetError::pki(dir, format!("create directory: {e}")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    Yes,
    No,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overwrite {
    Yes,
    No,
}

/// Writes `contents` to `path` and syncs it; a secret file is mode 0600 before anything is
/// written to it.
fn write_file(path: &Path, contents: &str, secret: Secret, overwrite: Overwrite) -> Result<()> {
    let fail = |action: &str, e: std::io::Error| NetError::pki(PathBuf::from(path), format!("{action}: {e}"));
    let mut options = fs::OpenOptions::new();
    options.write(true);
    match overwrite {
        Overwrite::Yes => options.create(true).truncate(true),
        Overwrite::No => options.create_new(true),
    };
    #[cfg(unix)]
    if secret == Secret::Yes {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| fail("create", e))?;
    #[cfg(unix)]
    if secret == Secret::Yes {
        // `mode` applies only to new files; an existing key file is narrowed too.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| fail("set permissions", e))?;
    }
    file.write_all(contents.as_bytes())
        .map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::cert_has_role;

    fn leaf(identity: &Identity) -> CertificateDer<'static> {
        identity.cert_chain().unwrap().remove(0)
    }

    #[test]
    fn node_and_client_certificates_carry_their_roles() {
        let ca = Ca::generate("test").unwrap();
        let node = leaf(&ca.issue_node(7).unwrap());
        let client = leaf(&ca.issue_client("alice").unwrap());

        assert!(cert_has_role(&node, NODE_ROLE_NAME));
        assert!(cert_has_role(&node, SERVER_NAME));
        assert!(cert_has_role(&node, "node-7.mooseng"));
        assert!(!cert_has_role(&node, "node-8.mooseng"));
        assert!(!cert_has_role(&node, CLIENT_ROLE_NAME));

        assert!(cert_has_role(&client, CLIENT_ROLE_NAME));
        assert!(cert_has_role(&client, "alice.client.mooseng"));
        assert!(!cert_has_role(&client, NODE_ROLE_NAME));
        // A wildcard-free exact match: a client name cannot pose as the node role.
        assert!(!cert_has_role(&client, "mooseng"));
        assert!(!cert_has_role(&client, "not a dns name"));
    }

    #[test]
    fn issued_certificates_chain_to_their_ca_only() {
        let ca = Ca::generate("test").unwrap();
        let other = Ca::generate("test").unwrap();
        let ca_der = parse_certs(ca.cert_pem()).unwrap().remove(0);
        assert!(chains_to(&ca.issue_node(1).unwrap(), &ca_der).is_ok());
        assert!(chains_to(&ca.issue_client("bob").unwrap(), &ca_der).is_ok());
        assert!(chains_to(&other.issue_node(1).unwrap(), &ca_der).is_err());
    }

    #[test]
    fn client_names_must_be_dns_labels() {
        let ca = Ca::generate("test").unwrap();
        for bad in ["", "a.b", "-x", "x-", "sp ace", "é", &"x".repeat(64)] {
            assert!(
                matches!(ca.issue_client(bad), Err(NetError::Certificate(_))),
                "{bad:?} accepted"
            );
        }
        assert!(ca.issue_client("fuse-01").is_ok());
        assert!(matches!(Ca::generate(""), Err(NetError::Certificate(_))));
    }

    #[test]
    fn ca_and_identities_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("prod-eu").unwrap();
        ca.save(dir.path()).unwrap();
        let loaded = Ca::load(dir.path()).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());

        // The reloaded CA issues certificates that chain to the original certificate.
        let ca_der = parse_certs(ca.cert_pem()).unwrap().remove(0);
        let node = loaded.issue_node(3).unwrap();
        chains_to(&node, &ca_der).unwrap();

        node.save(dir.path(), "node-3").unwrap();
        assert_eq!(Identity::load(dir.path(), "node-3").unwrap(), node);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |f: &str| fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("ca.key"), 0o600);
            assert_eq!(mode("node-3.key"), 0o600);
        }

        // The CA is never overwritten; identities are.
        let err = Ca::generate("again").unwrap().save(dir.path()).unwrap_err();
        assert!(
            matches!(&err, NetError::Pki { path, .. } if path.ends_with("ca.pem")),
            "{err}"
        );
        assert_eq!(Ca::load(dir.path()).unwrap().cert_pem(), ca.cert_pem());
        let renewed = loaded.issue_node(3).unwrap();
        renewed.save(dir.path(), "node-3").unwrap();
        assert_eq!(Identity::load(dir.path(), "node-3").unwrap(), renewed);
    }

    #[test]
    fn load_errors_name_the_file_and_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let err = Ca::load(dir.path()).unwrap_err();
        let NetError::Pki { path, reason } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &dir.path().join("ca.pem"));
        assert!(reason.starts_with("read: "), "{reason}");

        let ca = Ca::generate("a").unwrap();
        let other = Ca::generate("b").unwrap();
        fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        fs::write(dir.path().join("ca.key"), "not pem").unwrap();
        let err = Ca::load(dir.path()).unwrap_err();
        assert!(
            matches!(&err, NetError::Pki { path, .. } if path.ends_with("ca.key")),
            "{err}"
        );

        // A key from another CA: detected at load, not when the first node fails to connect.
        fs::write(dir.path().join("ca.key"), &other.key_pem).unwrap();
        let err = Ca::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");

        fs::write(dir.path().join("x.pem"), "garbage").unwrap();
        fs::write(dir.path().join("x.key"), &other.key_pem).unwrap();
        let err = Identity::load(dir.path(), "x").unwrap_err();
        assert!(
            matches!(&err, NetError::Pki { path, .. } if path.ends_with("x.pem")),
            "{err}"
        );
    }

    #[test]
    fn common_name_parser_accepts_only_a_single_utf8_cn() {
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "ab" } }
        let cn = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, b'a', b'b',
        ];
        assert_eq!(single_common_name(&cn), Some("ab"));
        // Every truncation fails without panicking.
        for n in 0..cn.len() {
            assert_eq!(single_common_name(&cn[..n]), None);
        }
        let mut two = cn.to_vec();
        two.extend_from_slice(&cn);
        assert_eq!(single_common_name(&two), None);
        let mut org = cn;
        org[8] = 0x0a; // 2.5.4.10, organization
        assert_eq!(single_common_name(&org), None);
        let mut printable = cn;
        printable[9] = 0x13;
        assert_eq!(single_common_name(&printable), None);
        // Long-form lengths.
        let long = [
            0x31, 0x81, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, b'a', b'b',
        ];
        assert_eq!(single_common_name(&long), Some("ab"));
    }
}
