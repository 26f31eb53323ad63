//! Macros as the MTA sends them: one list per stage. A new CONNECT, HELO, MAIL or
//! RCPT clears the lists of all later stages (libmilter's rule), so values from one
//! message never leak into the next while connection-level ones stay visible.

use std::collections::BTreeMap;

use crate::milter::command::MacroPair;
use crate::milter::flags::Stage;
use crate::transaction::Macros;

#[derive(Debug, Default, Clone)]
pub(crate) struct MacroStore {
    stages: [Vec<MacroPair>; 8],
}

impl MacroStore {
    pub(crate) fn set(&mut self, stage: Stage, pairs: Vec<MacroPair>) {
        self.stages[stage.order()] = pairs;
    }

    /// Forget the lists of every stage after `stage`.
    pub(crate) fn clear_after(&mut self, stage: Stage) {
        for list in &mut self.stages[stage.order() + 1..] {
            list.clear();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.stages.iter_mut().for_each(Vec::clear);
    }

    /// All stages flattened; a later stage's value wins.
    pub(crate) fn snapshot(&self) -> Macros {
        let mut map = BTreeMap::new();
        for list in &self.stages {
            for pair in list {
                map.insert(pair.name.clone(), pair.value.clone());
            }
        }
        Macros::new(map)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn pair(name: &str, value: &'static str) -> MacroPair {
        MacroPair {
            name: name.into(),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[test]
    fn later_stages_are_cleared_and_connect_survives() {
        let mut store = MacroStore::default();
        store.set(Stage::Connect, vec![pair("j", "mx")]);
        store.set(Stage::Mail, vec![pair("auth_authen", "bob")]);
        store.set(Stage::Eom, vec![pair("i", "Q1")]);
        store.clear_after(Stage::Helo);
        let m = store.snapshot();
        assert_eq!(m.text("j").as_deref(), Some("mx"));
        assert_eq!(m.text("{auth_authen}"), None);
        assert_eq!(m.text("i"), None);
    }

    #[test]
    fn later_stage_value_wins() {
        let mut store = MacroStore::default();
        store.set(Stage::Mail, vec![pair("i", "old")]);
        store.set(Stage::Data, vec![pair("i", "Q2")]);
        assert_eq!(store.snapshot().text("i").as_deref(), Some("Q2"));
    }
}
