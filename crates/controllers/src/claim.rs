//! Ownership claims (upstream's `ClaimObject`): what a controller does with an object
//! its selector may take in. Ownership is the controller reference on the object, so
//! two controllers with overlapping selectors never fight over one: the first to
//! adopt it has it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// What to do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching.
    Keep,
    /// A matching orphan: make it ours.
    Adopt,
    /// Ours but not matching any more: let it go.
    Release,
    /// Someone else's, or not for us.
    Ignore,
}

/// The decision for `object` (`matches`: whether the owner's selector matches it). An
/// owner being deleted neither adopts nor releases (the garbage collector is handling
/// its dependents); objects being deleted and objects of other namespaces are never
/// adopted.
pub fn decide(owner: &ObjectMeta, object: &ObjectMeta, matches: bool) -> Claim {
    let deleting = owner.deletion_timestamp.is_some();
    let controller = object
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    match controller {
        Some(reference) if Some(reference.uid.as_str()) != owner.uid.as_deref() => Claim::Ignore,
        Some(_) if matches => Claim::Keep,
        Some(_) if deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if deleting || !matches || object.deletion_timestamp.is_some() => Claim::Ignore,
        None if object.namespace != owner.namespace => Claim::Ignore,
        None => Claim::Adopt,
    }
}
