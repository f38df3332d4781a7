"""Dev mode's signing keys (the token issuer's and the pretend EHR's), shared by the service's worker processes.

Each key lives in ``data_dir/dev-keys/<name>.pem`` (mode 0600), made by whichever process needs it first; a token
one worker process minted is then accepted by every other. Dev mode only: production keys come from the identity
provider (``CDS_JWT_JWKS_FILE``) and the EHRs' key sets.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cds.errors import ConfigurationError

DEV_KEYS = "dev-keys"  # the folder in data_dir


def dev_key(folder: Path, name: str, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    """The EC key ``name`` in ``folder``, made when absent (created whole, so a racing process reads it whole).

    Raises:
        ConfigurationError: ``dev_key_invalid``: the file holds no EC private key on ``curve``.
    """
    path = folder / f"{name}.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(curve)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}-")
        try:
            os.write(handle, pem)
            os.close(handle)
            os.chmod(temporary, 0o600)
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != curve.name:
        raise ConfigurationError(f"{path} is not an EC {curve.name} private key", code="dev_key_invalid")
    return loaded
