//! The operator commands this host runs. A variant's `command` reaches the worker through the
//! log, which is data: whoever can publish a campaign could name any command, and the worker runs
//! it (as root, for namespaced labs). So the worker runs a variant's command only when its host
//! allows that very variant: its own variant files (`--allow-variants DIR`, or the files `evalctl
//! run` read itself), matched by name and by content (model, prompt, tools and command alike).

use std::collections::BTreeMap;

use schemas::campaign::VariantFile;

/// The variants whose commands this worker runs, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowedVariants {
    by_name: BTreeMap<String, VariantFile>,
    /// Where they came from, for the refusals' messages.
    sources: Vec<String>,
}

impl AllowedVariants {
    /// No variant: every managed operator is refused (external operators and baselines run).
    pub fn none() -> AllowedVariants {
        AllowedVariants::default()
    }

    /// Adds `variants`, read from `source` (a directory, or "the campaign files of this run").
    pub fn add(&mut self, source: &str, variants: impl IntoIterator<Item = VariantFile>) {
        self.sources.push(source.to_string());
        for variant in variants {
            self.by_name.insert(variant.name.clone(), variant);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Whether the worker may run `variant`'s command: an allowed variant of its name with the
    /// same content. Otherwise, why not.
    pub fn check(&self, variant: &VariantFile) -> Result<(), String> {
        let program = schemas::program::name();
        match self.by_name.get(&variant.name) {
            Some(allowed) if allowed == variant => Ok(()),
            Some(_) => Err(format!(
                "variant {:?} in the log differs from the one this host allows ({}): its command \
                 is not run; publish the campaign with the allowed file, or update the file on \
                 this host",
                variant.name,
                self.sources.join(", ")
            )),
            None if self.is_empty() => Err(format!(
                "this worker allows no operator commands: start it with --allow-variants DIR (the \
                 variant files whose commands this host may run), or run the campaign with \
                 `{program} run`"
            )),
            None => Err(format!(
                "variant {:?} is not among those this host allows ({}): its command is not run",
                variant.name,
                self.sources.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, command: &[&str]) -> VariantFile {
        VariantFile {
            name: name.to_string(),
            model: Some("m".to_string()),
            system_prompt: None,
            tools_config: Default::default(),
            command: Some(command.iter().map(|part| part.to_string()).collect()),
        }
    }

    #[test]
    fn only_the_allowed_variant_itself_runs() {
        let mut allowed = AllowedVariants::none();
        let refused = allowed.check(&variant("careful", &["op"])).unwrap_err();
        assert!(refused.contains("--allow-variants"), "{refused}");
        allowed.add(
            "/etc/eval/variants",
            [variant("careful", &["op", "--careful"])],
        );
        allowed
            .check(&variant("careful", &["op", "--careful"]))
            .unwrap();
        let forged = allowed
            .check(&variant("careful", &["sh", "-c", "rm -rf /"]))
            .unwrap_err();
        assert!(
            forged.contains("differs from the one this host allows"),
            "{forged}"
        );
        assert!(forged.contains("/etc/eval/variants"), "{forged}");
        let mut other_model = variant("careful", &["op", "--careful"]);
        other_model.model = Some("another".to_string());
        assert!(allowed.check(&other_model).is_err());
        let unknown = allowed.check(&variant("hasty", &["op"])).unwrap_err();
        assert!(
            unknown.contains("not among those this host allows"),
            "{unknown}"
        );
    }
}
