//! The job's keys: what a request must carry before any rank serves it.
//!
//! Anyone who can reach a rank's UCX worker can send it messages. So rank 0 draws two random
//! keys at init and shares them over MPI: the **rank key**, which only the job's ranks hold,
//! and the **client key**, which the contact file (mode 0600) hands to attached clients. A
//! request carries its sender's key as its credential (`wire::Credential`):
//! * a request that claims to come from a rank of the job must carry the rank key;
//! * a request from an attached client must carry the client key, and may not be one that
//!   only ranks send to each other ([`wire::Opcode::is_internal`]);
//! * anything else is dropped unanswered.
//!
//! A client key cannot be turned into the rank key (they are drawn independently), so an
//! attached client can neither pass for a rank nor send a rank's internal requests. The job's
//! ranks trust each other (one job, one user), and a credential is a bearer token: it guards
//! against other users who can reach the workers, not against those who can read the job's
//! traffic or memory (see `docs/security.md`).

use super::wire::{Credential, CREDENTIAL_LEN};

/// The keys of a job, as its ranks hold them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub rank: Credential,
    pub client: Credential,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// What a rank or client holds: a serving rank the job's keys (it sends with the rank key and
/// checks what it serves), an attached client only the client key.
#[derive(Clone, Copy, Debug)]
pub enum Access {
    Rank(Keys),
    Client(Credential),
}

impl Access {
    /// The credential its requests carry.
    pub fn credential(&self) -> Credential {
        match self {
            Access::Rank(keys) => keys.rank,
            Access::Client(key) => *key,
        }
    }

    /// The keys requests to it must carry; `None` for a client, which serves nothing.
    pub fn keys(&self) -> Option<Keys> {
        match self {
            Access::Rank(keys) => Some(*keys),
            Access::Client(_) => None,
        }
    }
}

/// Bytes of [`Keys::to_bytes`].
pub const KEYS_LEN: usize = 2 * CREDENTIAL_LEN;

impl Keys {
    /// Two fresh keys from the kernel's random source.
    pub fn generate() -> std::io::Result<Keys> {
        let mut bytes = [0u8; KEYS_LEN];
        let mut filled = 0;
        while filled < bytes.len() {
            let rest = &mut bytes[filled..];
            // SAFETY: rest is valid for writes of its length.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr() as *mut libc::c_void, rest.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
                continue;
            }
            filled += n as usize;
        }
        Ok(Keys::from_bytes(&bytes).expect("exactly KEYS_LEN bytes"))
    }

    pub fn to_bytes(self) -> [u8; KEYS_LEN] {
        let mut bytes = [0u8; KEYS_LEN];
        bytes[..CREDENTIAL_LEN].copy_from_slice(&self.rank);
        bytes[CREDENTIAL_LEN..].copy_from_slice(&self.client);
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Keys> {
        if bytes.len() != KEYS_LEN {
            return None;
        }
        let (rank, client) = bytes.split_at(CREDENTIAL_LEN);
        Some(Keys { rank: rank.try_into().ok()?, client: client.try_into().ok()? })
    }
}

/// Compares two credentials in time that does not depend on where they differ.
pub fn same(a: &Credential, b: &Credential) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_round_trip() {
        let (a, b) = (Keys::generate().unwrap(), Keys::generate().unwrap());
        assert_ne!(a.rank, a.client);
        assert_ne!(a.rank, b.rank);
        assert_eq!(Keys::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(Keys::from_bytes(&[0; 5]), None);
        assert!(same(&a.rank, &a.rank) && !same(&a.rank, &a.client));
    }
}
