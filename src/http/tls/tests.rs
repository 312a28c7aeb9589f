use super::*;

/// A fresh self-signed certificate for `localhost` and its key, as PEM.
fn pair() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn files(&self, cert: &str, key: &str) -> TlsFiles {
        TlsFiles {
            cert: self.write("cert.pem", cert),
            key: self.write("key.pem", key),
        }
    }
}

fn load_err(files: TlsFiles) -> String {
    Tls::load(files).unwrap_err().to_string()
}

#[test]
fn a_matching_pair_loads() {
    let (cert, key) = pair();
    let dir = Dir::new();
    let tls = Tls::load(dir.files(&cert, &key)).unwrap();
    assert_eq!(tls.files().cert, dir.dir.path().join("cert.pem"));
}

#[test]
fn a_missing_file_names_the_flag_and_the_file() {
    let (cert, key) = pair();
    let dir = Dir::new();
    let mut files = dir.files(&cert, &key);
    files.cert = dir.dir.path().join("nowhere.pem");
    let text = load_err(files.clone());
    assert!(
        text.starts_with("--tls-cert ") && text.contains("nowhere.pem"),
        "{text}"
    );
    files.cert = dir.dir.path().join("cert.pem");
    files.key = dir.dir.path().join("gone.pem");
    let text = load_err(files);
    assert!(
        text.starts_with("--tls-key ") && text.contains("gone.pem"),
        "{text}"
    );
}

#[test]
fn a_key_for_another_certificate_is_refused_without_key_material() {
    let (cert, _) = pair();
    let (_, other_key) = pair();
    let dir = Dir::new();
    let text = load_err(dir.files(&cert, &other_key));
    assert!(
        text.contains("does not match") && text.contains("--tls-key") && text.contains("--tls-cert"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY") && !text.contains("MII"), "{text}");
}

#[test]
fn swapped_files_are_refused() {
    let (cert, key) = pair();
    let dir = Dir::new();
    let text = load_err(dir.files(&key, &cert));
    assert!(
        text.starts_with("--tls-cert ") && text.contains("no PEM certificate"),
        "{text}"
    );
}

#[test]
fn a_key_file_without_a_key_is_refused() {
    let (cert, _) = pair();
    let dir = Dir::new();
    let text = load_err(dir.files(&cert, "not a key\n"));
    assert!(
        text.starts_with("--tls-key ") && text.contains("no PEM private key"),
        "{text}"
    );
}

#[test]
fn a_certificate_that_is_not_x509_is_refused() {
    let (_, key) = pair();
    let dir = Dir::new();
    let junk = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
    let text = load_err(dir.files(junk, &key));
    assert!(
        text.starts_with("--tls-cert ") && text.contains("not a valid X.509"),
        "{text}"
    );
}

#[test]
fn a_huge_file_is_refused_unread() {
    let (cert, _) = pair();
    let dir = Dir::new();
    let big = "A".repeat(MAX_PEM_BYTES as usize + 1);
    let text = load_err(dir.files(&cert, &big));
    assert!(
        text.starts_with("--tls-key ") && text.contains("over 1 MiB"),
        "{text}"
    );
}

#[test]
fn a_reload_swaps_the_certificate_and_a_bad_one_keeps_the_old() {
    let (cert, key) = pair();
    let dir = Dir::new();
    let tls = Tls::load(dir.files(&cert, &key)).unwrap();
    let served = |tls: &Tls| tls.current.0.read().unwrap().cert[0].clone();
    let first = served(&tls);

    let (cert2, key2) = pair();
    dir.files(&cert2, &key2);
    tls.reload().unwrap();
    let second = served(&tls);
    assert_ne!(first, second);

    // A key that does not fit: refused, the second pair stays in force.
    let (_, key3) = pair();
    dir.write("key.pem", &key3);
    let text = tls.reload().unwrap_err().to_string();
    assert!(text.contains("does not match"), "{text}");
    assert_eq!(served(&tls), second);
}
