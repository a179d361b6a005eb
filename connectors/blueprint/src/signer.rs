//! The signer hook: a blueprint that says `signer: {kind: aws-sigv4, …}`
//! has each attempt signed through the transport's `RequestSigner`.

use std::sync::Arc;

use inferlink_core::transport::RequestSigner;
use inferlink_core::{ConnectTarget, Error, ErrorKind, Result};

use crate::spec::SignerDoc;

/// The signer a blueprint asks for, built from the target's credentials.
pub(crate) fn for_blueprint(
    signer: &SignerDoc,
    _target: &ConnectTarget,
) -> Result<Arc<dyn RequestSigner>> {
    let why = format!(
        "the {} signer (service {}) is not available in this build of inferlink-blueprint",
        signer.kind, signer.service
    );
    Err(Error::new(ErrorKind::Unsupported, why))
}
