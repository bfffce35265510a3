//! What went wrong talking to NATS: a kind callers decide on (retry, tell
//! the client it is unavailable, report a bug), the thing it was about (a
//! subject, a stream, a bucket, a url), and the error underneath, kept as the
//! source.

/// An error underneath, as the NATS client (or the bus itself) gave it.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusErrorKind {
    /// The server could not be reached.
    Connect,
    /// A definition in `nats/` or a name is invalid: a bug or a bad configuration.
    Definition,
    /// Creating or updating a stream, a consumer or a bucket failed.
    Setup,
    /// A message was not published (or its acknowledgement never came).
    Publish,
    /// Reading a stream, a consumer or a bucket failed.
    Consume,
    /// A record, message or reply is not what it must be (a bug, or a writer
    /// that does not keep the contract).
    Invalid,
    /// A request failed.
    Request,
    /// A request got no reply in time.
    Timeout,
    /// Nobody is subscribed to a request's subject.
    NoResponders,
}

#[derive(Debug)]
pub struct BusError {
    kind: BusErrorKind,
    /// What it was about: a subject, a stream, a bucket, the server's url.
    about: String,
    source: Option<Source>,
}

impl BusError {
    pub fn new(
        kind: BusErrorKind,
        about: impl Into<String>,
        source: impl Into<Source>,
    ) -> BusError {
        BusError {
            kind,
            about: about.into(),
            source: Some(source.into()),
        }
    }

    pub fn bare(kind: BusErrorKind, about: impl Into<String>) -> BusError {
        BusError {
            kind,
            about: about.into(),
            source: None,
        }
    }

    pub fn kind(&self) -> BusErrorKind {
        self.kind
    }

    /// What it was about: a subject, a stream, a bucket, the server's url.
    pub fn about(&self) -> &str {
        &self.about
    }

    /// NATS (or a collector behind it) is away or busy: trying again later
    /// may work. The other kinds are bugs or bad input.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self.kind, BusErrorKind::Definition | BusErrorKind::Invalid)
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let about = &self.about;
        match self.kind {
            BusErrorKind::Connect => write!(f, "cannot connect to NATS at {about}")?,
            BusErrorKind::Definition => write!(f, "invalid jetstream definition {about}")?,
            BusErrorKind::Setup => write!(f, "jetstream setup of {about} failed")?,
            BusErrorKind::Publish => write!(f, "publish to {about} failed")?,
            BusErrorKind::Consume => write!(f, "consuming from {about} failed")?,
            BusErrorKind::Invalid => write!(f, "{about} is not valid")?,
            BusErrorKind::Request => write!(f, "request to {about} failed")?,
            BusErrorKind::Timeout => write!(f, "request to {about} got no reply in time")?,
            BusErrorKind::NoResponders => {
                return write!(f, "no collector is subscribed to {about}");
            }
        }
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_and_the_source_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = BusError::new(BusErrorKind::Connect, "nats://x:1", io);
        assert_eq!(
            e.to_string(),
            "cannot connect to NATS at nats://x:1: refused"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.is_unavailable());
        assert!(!BusError::new(BusErrorKind::Invalid, "record t-1", "not json").is_unavailable());
        assert_eq!(
            BusError::bare(BusErrorKind::NoResponders, "inventory.collect.aws.all").to_string(),
            "no collector is subscribed to inventory.collect.aws.all"
        );
    }
}
