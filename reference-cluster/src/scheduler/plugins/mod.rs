//! The in-tree plugins, the registry that builds them by name, and the assembly of a profile's
//! framework from its configuration (upstream's default plugin set, `multiPoint` expansion,
//! per-extension-point overrides and score weights).

pub mod affinity;
pub mod basic;
pub mod fit;
pub mod interpod;
pub mod preemption;
pub mod spread;
pub mod volume;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::config::{PluginRef, PluginSet, ProfileConfig};
use super::framework::runtime::PluginLists;
use super::framework::{points, Framework, Plugin};

/// Upstream 1.32's default `multiPoint` plugins, in order, with their score weights.
pub const DEFAULT_PLUGINS: &[(&str, Option<i64>)] = &[
    ("SchedulingGates", None),
    ("PrioritySort", None),
    ("NodeUnschedulable", None),
    ("NodeName", None),
    ("TaintToleration", Some(3)),
    ("NodeAffinity", Some(2)),
    ("NodePorts", None),
    ("NodeResourcesFit", Some(1)),
    ("VolumeBinding", None),
    ("PodTopologySpread", Some(2)),
    ("InterPodAffinity", Some(2)),
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", Some(1)),
    ("ImageLocality", Some(1)),
    ("DefaultBinder", None),
];

/// Default plugins upstream enables that do not apply here: volume limits and restrictions
/// need CSI drivers and attachable volumes, which the reference cluster does not have.
/// Configurations naming them are accepted; the plugins do nothing.
const ACCEPTED_NO_OP: &[&str] = &["VolumeRestrictions", "NodeVolumeLimits", "VolumeZone"];

/// Builds a plugin by name with its arguments (`apiVersion`/`kind` in them are allowed).
pub fn new_plugin(name: &str, args: Option<&Value>) -> Result<Arc<dyn Plugin>, String> {
    let stripped = args.map(|a| {
        let mut a = a.clone();
        if let Some(o) = a.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
        }
        a
    });
    let args = stripped.as_ref();
    Ok(match name {
        "SchedulingGates" => Arc::new(basic::SchedulingGates),
        "PrioritySort" => Arc::new(basic::PrioritySort),
        "NodeUnschedulable" => Arc::new(basic::NodeUnschedulable),
        "NodeName" => Arc::new(basic::NodeName),
        "NodePorts" => Arc::new(basic::NodePorts),
        "ImageLocality" => Arc::new(basic::ImageLocality),
        "TaintToleration" => Arc::new(affinity::TaintToleration),
        "NodeAffinity" => Arc::new(affinity::NodeAffinity::new(args)?),
        "NodeResourcesFit" => Arc::new(fit::Fit::new(args)?),
        "NodeResourcesBalancedAllocation" => Arc::new(fit::BalancedAllocation::new(args)?),
        "VolumeBinding" => Arc::new(volume::VolumeBinding::new(args)?),
        "PodTopologySpread" => Arc::new(spread::PodTopologySpread::new(args)?),
        "InterPodAffinity" => Arc::new(interpod::InterPodAffinity::new(args)?),
        "DefaultPreemption" => Arc::new(preemption::DefaultPreemption::new(args)?),
        "DefaultBinder" => Arc::new(preemption::DefaultBinder),
        other if ACCEPTED_NO_OP.contains(&other) => Arc::new(NoOp(
            ACCEPTED_NO_OP
                .iter()
                .find(|n| **n == other)
                .copied()
                .unwrap_or(""),
        )),
        other => return Err(format!("plugin {other:?} does not exist")),
    })
}

struct NoOp(&'static str);

impl Plugin for NoOp {
    fn name(&self) -> &'static str {
        self.0
    }
    fn points(&self) -> u32 {
        0
    }
}

/// Upstream `mergePluginSet`: the user's set laid over the defaults (`*` disables them all; a
/// re-enabled default keeps its position with the user's settings).
fn merge(defaults: &[PluginRef], custom: &PluginSet) -> PluginSet {
    let disabled: Vec<&str> = custom.disabled.iter().map(|p| p.name.as_str()).collect();
    let mut used = vec![false; custom.enabled.len()];
    let mut enabled = Vec::new();
    if !disabled.contains(&"*") {
        for d in defaults {
            if disabled.contains(&d.name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    used[i] = true;
                    enabled.push(custom.enabled[i].clone());
                }
                None => enabled.push(d.clone()),
            }
        }
    }
    enabled.extend(
        custom
            .enabled
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(c, _)| c.clone()),
    );
    PluginSet {
        enabled,
        disabled: custom.disabled.clone(),
    }
}

/// Plugins at one extension point: explicitly configured overrides first, then `multiPoint`
/// plugins implementing the point, then other explicitly enabled plugins.
fn expand(
    point: u32,
    specific: &PluginSet,
    multi: &PluginSet,
    instances: &BTreeMap<String, Arc<dyn Plugin>>,
) -> Result<Vec<String>, String> {
    let disabled: Vec<&str> = specific.disabled.iter().map(|p| p.name.as_str()).collect();
    let explicit: Vec<&str> = specific.enabled.iter().map(|p| p.name.as_str()).collect();
    for name in &explicit {
        let p = instances
            .get(*name)
            .ok_or_else(|| format!("plugin {name:?} does not exist"))?;
        if p.points() & point == 0 && !ACCEPTED_NO_OP.contains(name) {
            return Err(format!(
                "plugin {name:?} does not extend this extension point"
            ));
        }
    }
    let mut from_multi: Vec<&str> = Vec::new();
    let mut overridden: Vec<&str> = Vec::new();
    if !disabled.contains(&"*") {
        for m in &multi.enabled {
            let p = instances
                .get(&m.name)
                .ok_or_else(|| format!("plugin {:?} does not exist", m.name))?;
            if p.points() & point == 0 || disabled.contains(&m.name.as_str()) {
                continue;
            }
            if explicit.contains(&m.name.as_str()) {
                overridden.push(&m.name);
                continue;
            }
            if from_multi.contains(&m.name.as_str()) {
                return Err(format!("plugin {:?} already registered", m.name));
            }
            from_multi.push(&m.name);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for name in explicit.iter().filter(|n| overridden.contains(n)) {
        out.push(name.to_string());
    }
    out.extend(from_multi.iter().map(|s| s.to_string()));
    for name in explicit.iter().filter(|n| !overridden.contains(n)) {
        if out.iter().any(|o| o == name) {
            return Err(format!("plugin {name:?} already registered"));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Builds a profile's framework from its configuration.
pub fn build_framework(profile: &ProfileConfig) -> Result<Framework, String> {
    let defaults: Vec<PluginRef> = DEFAULT_PLUGINS
        .iter()
        .map(|(n, w)| PluginRef {
            name: n.to_string(),
            weight: *w,
        })
        .collect();
    let p = &profile.plugins;
    let multi = merge(&defaults, &p.multi_point);
    let mut instances: BTreeMap<String, Arc<dyn Plugin>> = BTreeMap::new();
    let sets = [
        &p.pre_enqueue,
        &p.queue_sort,
        &p.pre_filter,
        &p.filter,
        &p.post_filter,
        &p.pre_score,
        &p.score,
        &p.reserve,
        &p.permit,
        &p.pre_bind,
        &p.bind,
        &p.post_bind,
        &multi,
    ];
    for set in sets {
        for r in &set.enabled {
            if !instances.contains_key(&r.name) {
                let plugin = new_plugin(&r.name, profile.plugin_args.get(&r.name))
                    .map_err(|e| format!("profile {:?}: {e}", profile.scheduler_name))?;
                instances.insert(r.name.clone(), plugin);
            }
        }
    }
    for name in profile.plugin_args.keys() {
        if !instances.contains_key(name) {
            // Upstream builds every configured plugin's args; args for a plugin that is not
            // enabled are still validated.
            new_plugin(name, profile.plugin_args.get(name))
                .map_err(|e| format!("profile {:?}: {e}", profile.scheduler_name))?;
        }
    }
    let pick = |point: u32, set: &PluginSet| -> Result<Vec<Arc<dyn Plugin>>, String> {
        Ok(expand(point, set, &multi, &instances)?
            .into_iter()
            .filter_map(|n| instances.get(&n).cloned())
            .filter(|p| p.points() & point != 0)
            .collect())
    };
    let mut weights: BTreeMap<String, i64> = BTreeMap::new();
    for r in multi.enabled.iter().chain(&p.score.enabled) {
        let w = r.weight.unwrap_or(0);
        if !(0..=100).contains(&w) {
            return Err(format!(
                "profile {:?}: plugin {:?}: weight {w} out of range [0, 100]",
                profile.scheduler_name, r.name
            ));
        }
        weights.insert(r.name.clone(), if w == 0 { 1 } else { w });
    }
    let score = pick(points::SCORE, &p.score)?
        .into_iter()
        .map(|pl| {
            let w = weights.get(pl.name()).copied().unwrap_or(1);
            (pl, w)
        })
        .collect();
    let lists = PluginLists {
        pre_enqueue: pick(points::PRE_ENQUEUE, &p.pre_enqueue)?,
        pre_filter: pick(points::PRE_FILTER, &p.pre_filter)?,
        filter: pick(points::FILTER, &p.filter)?,
        post_filter: pick(points::POST_FILTER, &p.post_filter)?,
        pre_score: pick(points::PRE_SCORE, &p.pre_score)?,
        score,
        reserve: pick(points::RESERVE, &p.reserve)?,
        permit: pick(points::PERMIT, &p.permit)?,
        pre_bind: pick(points::PRE_BIND, &p.pre_bind)?,
        bind: pick(points::BIND, &p.bind)?,
    };
    if lists.bind.is_empty() {
        return Err(format!(
            "profile {:?}: at least one bind plugin is needed",
            profile.scheduler_name
        ));
    }
    let queue_sort = pick(points::QUEUE_SORT, &p.queue_sort)?;
    if queue_sort.len() != 1 || queue_sort[0].name() != "PrioritySort" {
        return Err(format!(
            "profile {:?}: exactly one queue sort plugin (PrioritySort) is needed",
            profile.scheduler_name
        ));
    }
    Ok(Framework::new(
        &profile.scheduler_name,
        profile.percentage_of_nodes_to_score,
        lists,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::config::SchedulerFile;

    fn names(v: &[Arc<dyn Plugin>]) -> Vec<&'static str> {
        v.iter().map(|p| p.name()).collect()
    }

    #[test]
    fn default_profile_matches_upstream_order_and_weights() {
        let f = build_framework(&ProfileConfig::default()).unwrap();
        let l = f.plugins();
        assert_eq!(
            names(&l.filter),
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        assert_eq!(
            names(&l.pre_filter),
            [
                "NodeAffinity",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        let scores: Vec<(&str, i64)> = l.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert_eq!(names(&l.post_filter), ["DefaultPreemption"]);
        assert_eq!(names(&l.bind), ["DefaultBinder"]);
        assert_eq!(names(&l.pre_enqueue), ["SchedulingGates"]);
    }

    #[test]
    fn disabling_reweighting_and_args() {
        let f = SchedulerFile::from_yaml(
            r#"
profiles:
- plugins:
    score:
      disabled: [{name: ImageLocality}, {name: NodeResourcesBalancedAllocation}]
      enabled: [{name: NodeResourcesFit, weight: 7}]
    filter:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit}]
    postFilter:
      disabled: [{name: DefaultPreemption}]
"#,
        )
        .unwrap();
        let fw = build_framework(&f.profiles[0]).unwrap();
        let l = fw.plugins();
        assert_eq!(names(&l.filter), ["NodeResourcesFit"]);
        assert!(l.post_filter.is_empty());
        let scores: Vec<(&str, i64)> = l.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert_eq!(
            scores,
            [
                ("NodeResourcesFit", 7),
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2)
            ]
        );
    }

    #[test]
    fn configuration_errors() {
        let bad = |y: &str| match build_framework(&SchedulerFile::from_yaml(y).unwrap().profiles[0])
        {
            Ok(_) => panic!("{y} should be rejected"),
            Err(e) => e,
        };
        assert!(
            bad("profiles: [{plugins: {filter: {enabled: [{name: Nope}]}}}]")
                .contains("does not exist")
        );
        assert!(
            bad("profiles: [{plugins: {filter: {enabled: [{name: ImageLocality}]}}}]")
                .contains("does not extend")
        );
        assert!(
            bad("profiles: [{plugins: {multiPoint: {disabled: [{name: DefaultBinder}]}}}]")
                .contains("bind plugin")
        );
        assert!(bad("profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: {type: X}}}]}]").contains("Unsupported"));
        assert!(bad(
            "profiles: [{plugins: {score: {enabled: [{name: ImageLocality, weight: 1000}]}}}]"
        )
        .contains("out of range"));
    }

    #[test]
    fn accepted_no_op_plugins() {
        let f = SchedulerFile::from_yaml(
            "profiles: [{plugins: {multiPoint: {enabled: [{name: VolumeZone}]}}}]",
        )
        .unwrap();
        assert!(build_framework(&f.profiles[0]).is_ok());
    }
}
