//! Plugin names to constructors, and profiles: which plugins run and how much each
//! score weighs, loadable from upstream-shaped configuration text.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::framework::{Framework, Plugin};
use crate::plugins::{
    NodeAffinity, NodeName, NodePorts, NodeReady, NodeResourcesBalancedAllocation,
    NodeResourcesFit, NodeResourcesLeastAllocated, NodeUnschedulable, SelectorSpread,
    TaintToleration,
};

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Errors building a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The configuration text is neither valid YAML nor JSON of the expected shape.
    #[error("parsing scheduler configuration: {0}")]
    Parse(String),
    /// A plugin name not in the registry.
    #[error("plugin {name:?} is not registered")]
    UnknownPlugin {
        /// The name.
        name: String,
    },
    /// A plugin enabled at an extension point it does not implement.
    #[error("plugin {name:?} does not extend the {point} extension point")]
    WrongExtensionPoint {
        /// The plugin.
        name: String,
        /// `filter` or `score`.
        point: &'static str,
    },
    /// A negative score weight.
    #[error("score plugin {name:?} is not allowed to have a negative weight, got {weight}")]
    NegativeWeight {
        /// The plugin.
        name: String,
        /// The weight.
        weight: i64,
    },
    /// `percentageOfNodesToScore` above 100.
    #[error("percentageOfNodesToScore must be in the range [0, 100], got {0}")]
    Percentage(u32),
}

/// A constructor of a plugin.
pub type Constructor = fn() -> Arc<dyn Plugin>;

/// Plugin names to constructors.
#[derive(Debug, Clone)]
pub struct Registry {
    constructors: BTreeMap<&'static str, Constructor>,
}

impl Default for Registry {
    /// Every in-tree plugin.
    fn default() -> Self {
        let mut r = Self {
            constructors: BTreeMap::new(),
        };
        r.register(NodeUnschedulable::NAME, NodeUnschedulable::plugin);
        r.register(NodeName::NAME, NodeName::plugin);
        r.register(NodeReady::NAME, NodeReady::plugin);
        r.register(TaintToleration::NAME, TaintToleration::plugin);
        r.register(NodeAffinity::NAME, NodeAffinity::plugin);
        r.register(NodePorts::NAME, NodePorts::plugin);
        r.register(NodeResourcesFit::NAME, NodeResourcesFit::plugin);
        r.register(
            NodeResourcesLeastAllocated::NAME,
            NodeResourcesLeastAllocated::plugin,
        );
        r.register(
            NodeResourcesBalancedAllocation::NAME,
            NodeResourcesBalancedAllocation::plugin,
        );
        r.register(SelectorSpread::NAME, SelectorSpread::plugin);
        r
    }
}

impl Registry {
    /// Adds (or replaces) a plugin.
    pub fn register(&mut self, name: &'static str, constructor: Constructor) {
        self.constructors.insert(name, constructor);
    }

    /// Builds a plugin by name.
    pub fn build(&self, name: &str) -> Option<Arc<dyn Plugin>> {
        self.constructors.get(name).map(|c| c())
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.constructors.keys().copied().collect()
    }
}

/// Upstream's default filters, in order (NodeReady stands in for the node lister's
/// readiness check and the lifecycle controller's taints).
pub const DEFAULT_FILTERS: &[&str] = &[
    NodeUnschedulable::NAME,
    NodeName::NAME,
    NodeReady::NAME,
    TaintToleration::NAME,
    NodeAffinity::NAME,
    NodePorts::NAME,
    NodeResourcesFit::NAME,
];

/// Upstream's default scores and weights: TaintToleration 3, NodeAffinity 2, the
/// resource scores 1 each; spreading by owner 2, the weight of upstream's
/// PodTopologySpread, whose default constraints it stands in for.
pub const DEFAULT_SCORES: &[(&str, i64)] = &[
    (TaintToleration::NAME, 3),
    (NodeAffinity::NAME, 2),
    (SelectorSpread::NAME, 2),
    (NodeResourcesLeastAllocated::NAME, 1),
    (NodeResourcesBalancedAllocation::NAME, 1),
];

/// One plugin in a plugin set, as upstream's `Plugin { name, weight }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    /// The plugin name; `*` in `disabled` means every default plugin.
    pub name: String,
    /// Score weight (0 or absent: the default weight, or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// Plugins enabled and disabled at one extension point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    /// Enabled in addition to (or re-weighting) the defaults.
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    /// Removed from the defaults.
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// Plugin sets per extension point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    /// The Filter point.
    #[serde(default)]
    pub filter: PluginSet,
    /// The Score point.
    #[serde(default)]
    pub score: PluginSet,
}

/// One profile, as an entry of upstream's `KubeSchedulerConfiguration.profiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The `schedulerName` this profile serves.
    #[serde(default = "default_scheduler_name")]
    pub scheduler_name: String,
    /// Changes to the default plugins.
    #[serde(default)]
    pub plugins: Plugins,
    /// Overrides the configuration-wide percentage for this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_nodes_to_score: Option<u32>,
}

fn default_scheduler_name() -> String {
    DEFAULT_SCHEDULER_NAME.to_string()
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            scheduler_name: default_scheduler_name(),
            plugins: Plugins::default(),
            percentage_of_nodes_to_score: None,
        }
    }
}

/// Upstream's `KubeSchedulerConfiguration`, the fields this scheduler reads (others,
/// such as `apiVersion`, `kind` or `leaderElection`, are accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerConfiguration {
    /// 0 means adaptive (upstream's default).
    #[serde(default)]
    pub percentage_of_nodes_to_score: u32,
    /// The profiles; none means one default profile.
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

impl SchedulerConfiguration {
    /// Parses YAML or JSON text (JSON is YAML).
    pub fn from_text(text: &str) -> Result<Self, RegistryError> {
        let cfg: Self =
            serde_yaml::from_str(text).map_err(|e| RegistryError::Parse(e.to_string()))?;
        if cfg.percentage_of_nodes_to_score > 100 {
            return Err(RegistryError::Percentage(cfg.percentage_of_nodes_to_score));
        }
        Ok(cfg)
    }

    /// One framework per profile (a default profile when none is configured).
    pub fn build(&self, registry: &Registry) -> Result<Vec<Framework>, RegistryError> {
        if self.profiles.is_empty() {
            return Ok(vec![
                Profile::default().build(registry, self.percentage_of_nodes_to_score)?,
            ]);
        }
        self.profiles
            .iter()
            .map(|p| p.build(registry, self.percentage_of_nodes_to_score))
            .collect()
    }
}

/// Upstream's plugin set merge: defaults minus the disabled ones (all with `*`), with
/// an enabled plugin that is also a default replacing it in place (so a weight can be
/// changed), and other enabled plugins appended in order.
fn merge(defaults: &[(&str, i64)], set: &PluginSet) -> Vec<(String, Option<i64>)> {
    let all_disabled = set.disabled.iter().any(|p| p.name == "*");
    let mut out: Vec<(String, Option<i64>)> = Vec::new();
    let mut replaced = Vec::new();
    for (name, weight) in defaults {
        if all_disabled || set.disabled.iter().any(|p| p.name == *name) {
            continue;
        }
        match set.enabled.iter().position(|p| p.name == *name) {
            Some(i) => {
                replaced.push(i);
                let w = set.enabled[i].weight.filter(|w| *w != 0).unwrap_or(*weight);
                out.push((name.to_string(), Some(w)));
            }
            None => out.push((name.to_string(), Some(*weight))),
        }
    }
    for (i, p) in set.enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            out.push((p.name.clone(), p.weight));
        }
    }
    out
}

impl Profile {
    /// Builds the framework: upstream's defaults changed by this profile's plugin
    /// sets.
    pub fn build(
        &self,
        registry: &Registry,
        global_percentage: u32,
    ) -> Result<Framework, RegistryError> {
        let percentage = self
            .percentage_of_nodes_to_score
            .unwrap_or(global_percentage);
        if percentage > 100 {
            return Err(RegistryError::Percentage(percentage));
        }
        // Plugins at several points are built once, as upstream does.
        let mut built: BTreeMap<String, Arc<dyn Plugin>> = BTreeMap::new();
        let mut get = |name: &str| -> Result<Arc<dyn Plugin>, RegistryError> {
            if let Some(p) = built.get(name) {
                return Ok(p.clone());
            }
            let p = registry
                .build(name)
                .ok_or_else(|| RegistryError::UnknownPlugin {
                    name: name.to_string(),
                })?;
            built.insert(name.to_string(), p.clone());
            Ok(p)
        };
        let default_filters: Vec<(&str, i64)> = DEFAULT_FILTERS.iter().map(|n| (*n, 0)).collect();
        let mut filters = Vec::new();
        for (name, _) in merge(&default_filters, &self.plugins.filter) {
            let p = get(&name)?;
            if p.as_filter().is_none() {
                return Err(RegistryError::WrongExtensionPoint {
                    name,
                    point: "filter",
                });
            }
            filters.push(p);
        }
        let mut scorers = Vec::new();
        for (name, weight) in merge(DEFAULT_SCORES, &self.plugins.score) {
            let p = get(&name)?;
            if p.as_score().is_none() {
                return Err(RegistryError::WrongExtensionPoint {
                    name,
                    point: "score",
                });
            }
            let weight = match weight {
                Some(w) if w < 0 => return Err(RegistryError::NegativeWeight { name, weight: w }),
                Some(0) | None => 1,
                Some(w) => w,
            };
            scorers.push((p, weight));
        }
        Ok(Framework::new(
            self.scheduler_name.clone(),
            filters,
            scorers,
            percentage,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile() {
        let fw = SchedulerConfiguration::default()
            .build(&Registry::default())
            .expect("default builds");
        assert_eq!(fw.len(), 1);
        assert_eq!(fw[0].scheduler_name(), DEFAULT_SCHEDULER_NAME);
        assert_eq!(fw[0].filter_names(), DEFAULT_FILTERS.to_vec());
        assert_eq!(fw[0].score_weights(), DEFAULT_SCORES.to_vec());
    }

    #[test]
    fn profiles_from_text() {
        let yaml = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesLeastAllocated
      enabled:
      - name: TaintToleration
        weight: 7
- schedulerName: no-scores
  plugins:
    filter:
      disabled:
      - name: NodePorts
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesBalancedAllocation
"#;
        let cfg = SchedulerConfiguration::from_text(yaml).expect("parses");
        let fw = cfg.build(&Registry::default()).expect("builds");
        assert_eq!(
            fw[0].score_weights(),
            vec![
                (TaintToleration::NAME, 7),
                (NodeAffinity::NAME, 2),
                (SelectorSpread::NAME, 2),
                (NodeResourcesBalancedAllocation::NAME, 1),
            ]
        );
        assert_eq!(fw[1].scheduler_name(), "no-scores");
        assert!(!fw[1].filter_names().contains(&NodePorts::NAME));
        assert_eq!(
            fw[1].score_weights(),
            vec![(NodeResourcesBalancedAllocation::NAME, 1)]
        );

        let json = r#"{"profiles":[{"plugins":{"filter":{"disabled":[{"name":"*"}]}}}]}"#;
        let fw = SchedulerConfiguration::from_text(json)
            .and_then(|c| c.build(&Registry::default()))
            .expect("json builds");
        assert!(fw[0].filter_names().is_empty());
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "profiles: [{plugins: {filter: {enabled: [{name: Nope}]}}}]",
                RegistryError::UnknownPlugin {
                    name: "Nope".into(),
                },
            ),
            (
                "profiles: [{plugins: {score: {enabled: [{name: NodeName}]}}}]",
                RegistryError::WrongExtensionPoint {
                    name: "NodeName".into(),
                    point: "score",
                },
            ),
            (
                "profiles: [{plugins: {score: {enabled: [{name: NodeAffinity, weight: -1}]}}}]",
                RegistryError::NegativeWeight {
                    name: "NodeAffinity".into(),
                    weight: -1,
                },
            ),
            (
                "percentageOfNodesToScore: 101",
                RegistryError::Percentage(101),
            ),
        ];
        for (text, want) in cases {
            let got = SchedulerConfiguration::from_text(text)
                .and_then(|c| c.build(&Registry::default()))
                .expect_err(text);
            assert_eq!(got, want, "{text}");
        }
        assert!(matches!(
            SchedulerConfiguration::from_text("profiles: 3"),
            Err(RegistryError::Parse(_))
        ));
    }
}
