//! `WS_PORT`: each agent slot gets the base of a block of [`BLOCK`] ports of its own, so dev
//! servers started by agents in parallel worktrees never fight over a port. The block
//! follows the slot's name, and a slot is held by one live run at a time (its lock), so the
//! block is unique across the slots of a run and across concurrent runs in one repository.
//! Pure.
//!
//! `agent-k` gets `base + 10·(k−1)`; the overflow slot `agent-k-n` (taken while another run
//! holds `agent-k`) gets `base + 10·(OVERFLOW_FIRST + 64·(k−1) + n−2)`, above every primary
//! slot's block.

use crate::Invalid;

/// Ports per slot.
pub const BLOCK: u16 = 10;
/// Default base (git config `ws.portBase`).
pub const DEFAULT_BASE: u16 = 20000;
/// Primary slots `agent-1` … `agent-1000` use the first 1000 blocks.
const OVERFLOW_FIRST: u32 = 1000;
/// Overflow slots per agent (`agent-k-2` … `agent-k-65`), as the pool allows.
const OVERFLOW_PER_AGENT: u32 = 64;

/// The block of slot `slot` (`agent-3`, `agent-3-2`): `Ok(first port)`, or why there is
/// none (a block past port 65535, a name that is not a slot's).
pub fn port_for_slot(base: u16, slot: &str) -> Result<u16, Invalid> {
    let (k, n) =
        parse_slot(slot).ok_or_else(|| Invalid::new(format!("{slot:?} is not an agent slot")))?;
    let index = if n == 1 {
        if k > OVERFLOW_FIRST {
            return Err(Invalid::new(format!(
                "{slot}: only agents 1 to {OVERFLOW_FIRST} get a port block"
            )));
        }
        k - 1
    } else {
        OVERFLOW_FIRST + OVERFLOW_PER_AGENT * (k - 1) + (n - 2)
    };
    let first = u32::from(base) + u32::from(BLOCK) * index;
    if first + u32::from(BLOCK) - 1 > u32::from(u16::MAX) {
        return Err(Invalid::new(format!(
            "{slot}: its block of {BLOCK} ports would start at {first}, past 65535 (lower git config ws.portBase)"
        )));
    }
    Ok(first as u16)
}

/// `agent-3` → (3, 1); `agent-3-2` → (3, 2).
fn parse_slot(slot: &str) -> Option<(u32, u32)> {
    let rest = slot.strip_prefix("agent-")?;
    let (k, n) = match rest.split_once('-') {
        Some((k, n)) => (k, n.parse().ok().filter(|&n| n > 1)?),
        None => (rest, 1),
    };
    let k: u32 = k.parse().ok().filter(|&k| k > 0)?;
    (n <= OVERFLOW_PER_AGENT + 1).then_some((k, n))
}

/// Parse git config `ws.portBase`: a port from 1024 to 65526.
pub fn parse_base(text: &str) -> Result<u16, Invalid> {
    match text.trim().parse::<u16>() {
        Ok(p) if (1024..=u16::MAX - BLOCK + 1).contains(&p) => Ok(p),
        _ => Err(Invalid::new(format!(
            "{text:?} is not a port from 1024 to {}",
            u16::MAX - BLOCK + 1
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn primary_slots_count_up_from_the_base() {
        assert_eq!(port_for_slot(20000, "agent-1"), Ok(20000));
        assert_eq!(port_for_slot(20000, "agent-2"), Ok(20010));
        assert_eq!(port_for_slot(3000, "agent-10"), Ok(3090));
        assert_eq!(port_for_slot(20000, "agent-1-2"), Ok(30000));
        assert_eq!(port_for_slot(20000, "agent-2-2"), Ok(30640));
    }

    #[test]
    fn blocks_never_overlap() {
        let mut starts = HashSet::new();
        let mut count = 0;
        for k in 1..=40u32 {
            for n in 1..=8u32 {
                let name = if n == 1 {
                    format!("agent-{k}")
                } else {
                    format!("agent-{k}-{n}")
                };
                let p = port_for_slot(1024, &name).unwrap();
                assert!(starts.insert(p / BLOCK), "{name} shares a block");
                count += 1;
            }
        }
        assert_eq!(starts.len(), count);
    }

    #[test]
    fn out_of_range_and_bad_names_say_so() {
        let e = String::from(port_for_slot(65000, "agent-100").unwrap_err());
        assert!(e.contains("past 65535") && e.contains("ws.portBase"), "{e}");
        assert!(port_for_slot(20000, "agent-0").is_err());
        assert!(port_for_slot(20000, "main").is_err());
        assert!(port_for_slot(20000, "agent-1-1").is_err());
        assert_eq!(parse_base("8000"), Ok(8000));
        assert!(parse_base("80").is_err());
        assert!(parse_base("65530").is_err());
        assert!(parse_base("x").is_err());
    }
}
