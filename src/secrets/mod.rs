//! Task secrets (docs/ARCHITECTURE.md#secrets): values encrypted with age to the keys of the
//! workers allowed to run a task, decrypted only in a worker's memory at run time, and masked in
//! the output that is stored. Pure code: text and bytes in, ciphertext, plaintext or masked bytes
//! out; no git, no docker.
//!
//! - `recipients`: the grid's `.dgrid/recipients` file (a name, options, a public key per line);
//! - `cipher`: encrypting to recipients, checking that a field is age ciphertext, and the node's
//!   keys (`--identity`) that open a task's secrets;
//! - `mask`: replacing every secret value (and its base64 form) in a stream by `[MASKED]`;
//! - `tokens`: whether a plain `env` value looks like a credential that belongs in `secrets`.

mod cipher;
mod mask;
mod recipients;
mod tokens;

pub use cipher::{check_ciphertext, encrypt, Keys, Opened};
pub use mask::{Masker, MaskingReader, MASK, MIN_MASKED_LEN};
pub use recipients::{parse_recipients, Recipient, RECIPIENTS_PATH};
pub use tokens::looks_like_token;
