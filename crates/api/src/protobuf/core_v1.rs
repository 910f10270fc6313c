//! `k8s.io/api/core/v1`: namespaces, config maps, secrets, service accounts, services
//! and pods. Field numbers from its `generated.proto`; shapes (pointer, `omitempty`,
//! inline) from `types.go`. Fields not listed are skipped when decoding; see the module
//! documentation for what is left out.

use super::meta_v1::{CONDITION, LABEL_SELECTOR, OBJECT_META};
use super::schema::Ty::{Bool, Bytes, I32, I64, IntOrString, Msg, Quantity, Str, Time};
use super::schema::{Message, inline, map, omitempty, pointer, slice, value};

// Namespaces.

pub(super) static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&NAMESPACE_SPEC)),
        omitempty(3, "status", Msg(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[slice(1, "finalizers", Str)],
};

static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[
        omitempty(1, "phase", Str),
        slice(2, "conditions", Msg(&NAMESPACE_CONDITION)),
    ],
};

static NAMESPACE_CONDITION: Message = Message {
    name: "NamespaceCondition",
    fields: &[
        value(1, "type", Str),
        value(2, "status", Str),
        omitempty(4, "lastTransitionTime", Time),
        omitempty(5, "reason", Str),
        omitempty(6, "message", Str),
    ],
};

// Configuration.

pub(super) static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        pointer(4, "immutable", Bool),
        map(2, "data", Str),
        map(3, "binaryData", Bytes),
    ],
};

pub(super) static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        pointer(5, "immutable", Bool),
        map(2, "data", Bytes),
        map(4, "stringData", Str),
        omitempty(3, "type", Str),
    ],
};

pub(super) static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        slice(2, "secrets", Msg(&OBJECT_REFERENCE)),
        slice(3, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        pointer(4, "automountServiceAccountToken", Bool),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        omitempty(1, "kind", Str),
        omitempty(2, "namespace", Str),
        omitempty(3, "name", Str),
        omitempty(4, "uid", Str),
        omitempty(5, "apiVersion", Str),
        omitempty(6, "resourceVersion", Str),
        omitempty(7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[omitempty(1, "name", Str)],
};

// Services.

pub(super) static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&SERVICE_SPEC)),
        omitempty(3, "status", Msg(&SERVICE_STATUS)),
    ],
};

static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        slice(1, "ports", Msg(&SERVICE_PORT)),
        map(2, "selector", Str),
        omitempty(3, "clusterIP", Str),
        slice(18, "clusterIPs", Str),
        omitempty(4, "type", Str),
        slice(5, "externalIPs", Str),
        omitempty(7, "sessionAffinity", Str),
        omitempty(8, "loadBalancerIP", Str),
        slice(9, "loadBalancerSourceRanges", Str),
        omitempty(10, "externalName", Str),
        omitempty(11, "externalTrafficPolicy", Str),
        omitempty(12, "healthCheckNodePort", I32),
        omitempty(13, "publishNotReadyAddresses", Bool),
        pointer(14, "sessionAffinityConfig", Msg(&SESSION_AFFINITY_CONFIG)),
        slice(19, "ipFamilies", Str),
        pointer(17, "ipFamilyPolicy", Str),
        pointer(20, "allocateLoadBalancerNodePorts", Bool),
        pointer(21, "loadBalancerClass", Str),
        pointer(22, "internalTrafficPolicy", Str),
        pointer(23, "trafficDistribution", Str),
    ],
};

static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        omitempty(1, "name", Str),
        omitempty(2, "protocol", Str),
        pointer(6, "appProtocol", Str),
        value(3, "port", I32),
        omitempty(4, "targetPort", IntOrString),
        omitempty(5, "nodePort", I32),
    ],
};

static SESSION_AFFINITY_CONFIG: Message = Message {
    name: "SessionAffinityConfig",
    fields: &[pointer(1, "clientIP", Msg(&CLIENT_IP_CONFIG))],
};

static CLIENT_IP_CONFIG: Message = Message {
    name: "ClientIPConfig",
    fields: &[pointer(1, "timeoutSeconds", I32)],
};

static SERVICE_STATUS: Message = Message {
    name: "ServiceStatus",
    fields: &[
        omitempty(1, "loadBalancer", Msg(&LOAD_BALANCER_STATUS)),
        slice(2, "conditions", Msg(&CONDITION)),
    ],
};

static LOAD_BALANCER_STATUS: Message = Message {
    name: "LoadBalancerStatus",
    fields: &[slice(1, "ingress", Msg(&LOAD_BALANCER_INGRESS))],
};

static LOAD_BALANCER_INGRESS: Message = Message {
    name: "LoadBalancerIngress",
    fields: &[
        omitempty(1, "ip", Str),
        omitempty(2, "hostname", Str),
        pointer(3, "ipMode", Str),
        slice(4, "ports", Msg(&PORT_STATUS)),
    ],
};

static PORT_STATUS: Message = Message {
    name: "PortStatus",
    fields: &[
        value(1, "port", I32),
        value(2, "protocol", Str),
        pointer(3, "error", Str),
    ],
};

// Pods.

pub(super) static POD: Message = Message {
    name: "Pod",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&POD_SPEC)),
        omitempty(3, "status", Msg(&POD_STATUS)),
    ],
};

pub(super) static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[
        omitempty(1, "metadata", Msg(&OBJECT_META)),
        omitempty(2, "spec", Msg(&POD_SPEC)),
    ],
};

static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        slice(1, "volumes", Msg(&VOLUME)),
        slice(20, "initContainers", Msg(&CONTAINER)),
        slice(2, "containers", Msg(&CONTAINER)),
        omitempty(3, "restartPolicy", Str),
        pointer(4, "terminationGracePeriodSeconds", I64),
        pointer(5, "activeDeadlineSeconds", I64),
        omitempty(6, "dnsPolicy", Str),
        map(7, "nodeSelector", Str),
        omitempty(8, "serviceAccountName", Str),
        omitempty(9, "serviceAccount", Str),
        pointer(21, "automountServiceAccountToken", Bool),
        omitempty(10, "nodeName", Str),
        omitempty(11, "hostNetwork", Bool),
        omitempty(12, "hostPID", Bool),
        omitempty(13, "hostIPC", Bool),
        pointer(27, "shareProcessNamespace", Bool),
        pointer(14, "securityContext", Msg(&POD_SECURITY_CONTEXT)),
        slice(15, "imagePullSecrets", Msg(&LOCAL_OBJECT_REFERENCE)),
        omitempty(16, "hostname", Str),
        omitempty(17, "subdomain", Str),
        pointer(18, "affinity", Msg(&AFFINITY)),
        omitempty(19, "schedulerName", Str),
        slice(22, "tolerations", Msg(&TOLERATION)),
        slice(23, "hostAliases", Msg(&HOST_ALIAS)),
        omitempty(24, "priorityClassName", Str),
        pointer(25, "priority", I32),
        pointer(26, "dnsConfig", Msg(&POD_DNS_CONFIG)),
        slice(28, "readinessGates", Msg(&POD_READINESS_GATE)),
        pointer(29, "runtimeClassName", Str),
        pointer(30, "enableServiceLinks", Bool),
        pointer(31, "preemptionPolicy", Str),
        map(32, "overhead", Quantity),
        slice(
            33,
            "topologySpreadConstraints",
            Msg(&TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        pointer(35, "setHostnameAsFQDN", Bool),
        pointer(36, "os", Msg(&POD_OS)),
        pointer(37, "hostUsers", Bool),
        slice(38, "schedulingGates", Msg(&POD_SCHEDULING_GATE)),
        pointer(40, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        pointer(41, "hostnameOverride", Str),
    ],
};

static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        value(1, "name", Str),
        omitempty(2, "image", Str),
        slice(3, "command", Str),
        slice(4, "args", Str),
        omitempty(5, "workingDir", Str),
        slice(6, "ports", Msg(&CONTAINER_PORT)),
        slice(19, "envFrom", Msg(&ENV_FROM_SOURCE)),
        slice(7, "env", Msg(&ENV_VAR)),
        omitempty(8, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        slice(23, "resizePolicy", Msg(&CONTAINER_RESIZE_POLICY)),
        pointer(24, "restartPolicy", Str),
        slice(9, "volumeMounts", Msg(&VOLUME_MOUNT)),
        slice(21, "volumeDevices", Msg(&VOLUME_DEVICE)),
        pointer(10, "livenessProbe", Msg(&PROBE)),
        pointer(11, "readinessProbe", Msg(&PROBE)),
        pointer(22, "startupProbe", Msg(&PROBE)),
        pointer(12, "lifecycle", Msg(&LIFECYCLE)),
        omitempty(13, "terminationMessagePath", Str),
        omitempty(20, "terminationMessagePolicy", Str),
        omitempty(14, "imagePullPolicy", Str),
        pointer(15, "securityContext", Msg(&SECURITY_CONTEXT)),
        omitempty(16, "stdin", Bool),
        omitempty(17, "stdinOnce", Bool),
        omitempty(18, "tty", Bool),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        omitempty(1, "name", Str),
        omitempty(2, "hostPort", I32),
        value(3, "containerPort", I32),
        omitempty(4, "protocol", Str),
        omitempty(5, "hostIP", Str),
    ],
};

static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[
        value(1, "name", Str),
        omitempty(2, "value", Str),
        pointer(3, "valueFrom", Msg(&ENV_VAR_SOURCE)),
    ],
};

static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        pointer(1, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        pointer(2, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        pointer(3, "configMapKeyRef", Msg(&CONFIG_MAP_KEY_SELECTOR)),
        pointer(4, "secretKeyRef", Msg(&SECRET_KEY_SELECTOR)),
    ],
};

static OBJECT_FIELD_SELECTOR: Message = Message {
    name: "ObjectFieldSelector",
    fields: &[omitempty(1, "apiVersion", Str), value(2, "fieldPath", Str)],
};

static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[
        omitempty(1, "containerName", Str),
        value(2, "resource", Str),
        omitempty(3, "divisor", Quantity),
    ],
};

static CONFIG_MAP_KEY_SELECTOR: Message = Message {
    name: "ConfigMapKeySelector",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        value(2, "key", Str),
        pointer(3, "optional", Bool),
    ],
};

static SECRET_KEY_SELECTOR: Message = Message {
    name: "SecretKeySelector",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        value(2, "key", Str),
        pointer(3, "optional", Bool),
    ],
};

static ENV_FROM_SOURCE: Message = Message {
    name: "EnvFromSource",
    fields: &[
        omitempty(1, "prefix", Str),
        pointer(2, "configMapRef", Msg(&CONFIG_MAP_ENV_SOURCE)),
        pointer(3, "secretRef", Msg(&SECRET_ENV_SOURCE)),
    ],
};

static CONFIG_MAP_ENV_SOURCE: Message = Message {
    name: "ConfigMapEnvSource",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        pointer(2, "optional", Bool),
    ],
};

static SECRET_ENV_SOURCE: Message = Message {
    name: "SecretEnvSource",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        pointer(2, "optional", Bool),
    ],
};

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
        slice(3, "claims", Msg(&RESOURCE_CLAIM)),
    ],
};

static RESOURCE_CLAIM: Message = Message {
    name: "ResourceClaim",
    fields: &[value(1, "name", Str), omitempty(2, "request", Str)],
};

static CONTAINER_RESIZE_POLICY: Message = Message {
    name: "ContainerResizePolicy",
    fields: &[
        value(1, "resourceName", Str),
        value(2, "restartPolicy", Str),
    ],
};

static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        value(1, "name", Str),
        omitempty(2, "readOnly", Bool),
        pointer(7, "recursiveReadOnly", Str),
        value(3, "mountPath", Str),
        omitempty(4, "subPath", Str),
        pointer(5, "mountPropagation", Str),
        omitempty(6, "subPathExpr", Str),
    ],
};

static VOLUME_DEVICE: Message = Message {
    name: "VolumeDevice",
    fields: &[value(1, "name", Str), value(2, "devicePath", Str)],
};

// Volumes.

static VOLUME: Message = Message {
    name: "Volume",
    fields: &[value(1, "name", Str), inline(2, &VOLUME_SOURCE)],
};

static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        pointer(1, "hostPath", Msg(&HOST_PATH_VOLUME_SOURCE)),
        pointer(2, "emptyDir", Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        pointer(6, "secret", Msg(&SECRET_VOLUME_SOURCE)),
        pointer(10, "persistentVolumeClaim", Msg(&PVC_VOLUME_SOURCE)),
        pointer(16, "downwardAPI", Msg(&DOWNWARD_API_VOLUME_SOURCE)),
        pointer(19, "configMap", Msg(&CONFIG_MAP_VOLUME_SOURCE)),
        pointer(26, "projected", Msg(&PROJECTED_VOLUME_SOURCE)),
    ],
};

static HOST_PATH_VOLUME_SOURCE: Message = Message {
    name: "HostPathVolumeSource",
    fields: &[value(1, "path", Str), pointer(2, "type", Str)],
};

static EMPTY_DIR_VOLUME_SOURCE: Message = Message {
    name: "EmptyDirVolumeSource",
    fields: &[
        omitempty(1, "medium", Str),
        pointer(2, "sizeLimit", Quantity),
    ],
};

static SECRET_VOLUME_SOURCE: Message = Message {
    name: "SecretVolumeSource",
    fields: &[
        omitempty(1, "secretName", Str),
        slice(2, "items", Msg(&KEY_TO_PATH)),
        pointer(3, "defaultMode", I32),
        pointer(4, "optional", Bool),
    ],
};

static CONFIG_MAP_VOLUME_SOURCE: Message = Message {
    name: "ConfigMapVolumeSource",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        slice(2, "items", Msg(&KEY_TO_PATH)),
        pointer(3, "defaultMode", I32),
        pointer(4, "optional", Bool),
    ],
};

static KEY_TO_PATH: Message = Message {
    name: "KeyToPath",
    fields: &[
        value(1, "key", Str),
        value(2, "path", Str),
        pointer(3, "mode", I32),
    ],
};

static PVC_VOLUME_SOURCE: Message = Message {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[value(1, "claimName", Str), omitempty(2, "readOnly", Bool)],
};

static DOWNWARD_API_VOLUME_SOURCE: Message = Message {
    name: "DownwardAPIVolumeSource",
    fields: &[
        slice(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE)),
        pointer(2, "defaultMode", I32),
    ],
};

static DOWNWARD_API_VOLUME_FILE: Message = Message {
    name: "DownwardAPIVolumeFile",
    fields: &[
        value(1, "path", Str),
        pointer(2, "fieldRef", Msg(&OBJECT_FIELD_SELECTOR)),
        pointer(3, "resourceFieldRef", Msg(&RESOURCE_FIELD_SELECTOR)),
        pointer(4, "mode", I32),
    ],
};

static PROJECTED_VOLUME_SOURCE: Message = Message {
    name: "ProjectedVolumeSource",
    fields: &[
        slice(1, "sources", Msg(&VOLUME_PROJECTION)),
        pointer(2, "defaultMode", I32),
    ],
};

static VOLUME_PROJECTION: Message = Message {
    name: "VolumeProjection",
    fields: &[
        pointer(1, "secret", Msg(&SECRET_PROJECTION)),
        pointer(2, "downwardAPI", Msg(&DOWNWARD_API_PROJECTION)),
        pointer(3, "configMap", Msg(&CONFIG_MAP_PROJECTION)),
        pointer(
            4,
            "serviceAccountToken",
            Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION),
        ),
    ],
};

static SECRET_PROJECTION: Message = Message {
    name: "SecretProjection",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        slice(2, "items", Msg(&KEY_TO_PATH)),
        pointer(4, "optional", Bool),
    ],
};

static CONFIG_MAP_PROJECTION: Message = Message {
    name: "ConfigMapProjection",
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        slice(2, "items", Msg(&KEY_TO_PATH)),
        pointer(4, "optional", Bool),
    ],
};

static DOWNWARD_API_PROJECTION: Message = Message {
    name: "DownwardAPIProjection",
    fields: &[slice(1, "items", Msg(&DOWNWARD_API_VOLUME_FILE))],
};

static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message {
    name: "ServiceAccountTokenProjection",
    fields: &[
        omitempty(1, "audience", Str),
        pointer(2, "expirationSeconds", I64),
        value(3, "path", Str),
    ],
};

// Probes and lifecycle hooks.

static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        inline(1, &PROBE_HANDLER),
        omitempty(2, "initialDelaySeconds", I32),
        omitempty(3, "timeoutSeconds", I32),
        omitempty(4, "periodSeconds", I32),
        omitempty(5, "successThreshold", I32),
        omitempty(6, "failureThreshold", I32),
        pointer(7, "terminationGracePeriodSeconds", I64),
    ],
};

static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        pointer(1, "exec", Msg(&EXEC_ACTION)),
        pointer(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        pointer(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        pointer(4, "grpc", Msg(&GRPC_ACTION)),
    ],
};

static EXEC_ACTION: Message = Message {
    name: "ExecAction",
    fields: &[slice(1, "command", Str)],
};

static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        omitempty(1, "path", Str),
        value(2, "port", IntOrString),
        omitempty(3, "host", Str),
        omitempty(4, "scheme", Str),
        slice(5, "httpHeaders", Msg(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Message = Message {
    name: "HTTPHeader",
    fields: &[value(1, "name", Str), value(2, "value", Str)],
};

static TCP_SOCKET_ACTION: Message = Message {
    name: "TCPSocketAction",
    fields: &[value(1, "port", IntOrString), omitempty(2, "host", Str)],
};

static GRPC_ACTION: Message = Message {
    name: "GRPCAction",
    fields: &[value(1, "port", I32), pointer(2, "service", Str)],
};

static LIFECYCLE: Message = Message {
    name: "Lifecycle",
    fields: &[
        pointer(1, "postStart", Msg(&LIFECYCLE_HANDLER)),
        pointer(2, "preStop", Msg(&LIFECYCLE_HANDLER)),
        pointer(3, "stopSignal", Str),
    ],
};

static LIFECYCLE_HANDLER: Message = Message {
    name: "LifecycleHandler",
    fields: &[
        pointer(1, "exec", Msg(&EXEC_ACTION)),
        pointer(2, "httpGet", Msg(&HTTP_GET_ACTION)),
        pointer(3, "tcpSocket", Msg(&TCP_SOCKET_ACTION)),
        pointer(4, "sleep", Msg(&SLEEP_ACTION)),
    ],
};

static SLEEP_ACTION: Message = Message {
    name: "SleepAction",
    fields: &[value(1, "seconds", I64)],
};

// Security.

static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        pointer(1, "capabilities", Msg(&CAPABILITIES)),
        pointer(2, "privileged", Bool),
        pointer(3, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        pointer(10, "windowsOptions", Msg(&WINDOWS_OPTIONS)),
        pointer(4, "runAsUser", I64),
        pointer(8, "runAsGroup", I64),
        pointer(5, "runAsNonRoot", Bool),
        pointer(6, "readOnlyRootFilesystem", Bool),
        pointer(7, "allowPrivilegeEscalation", Bool),
        pointer(9, "procMount", Str),
        pointer(11, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        pointer(12, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
    ],
};

static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        pointer(1, "seLinuxOptions", Msg(&SE_LINUX_OPTIONS)),
        pointer(8, "windowsOptions", Msg(&WINDOWS_OPTIONS)),
        pointer(2, "runAsUser", I64),
        pointer(6, "runAsGroup", I64),
        pointer(3, "runAsNonRoot", Bool),
        slice(4, "supplementalGroups", I64),
        pointer(12, "supplementalGroupsPolicy", Str),
        pointer(5, "fsGroup", I64),
        slice(7, "sysctls", Msg(&SYSCTL)),
        pointer(9, "fsGroupChangePolicy", Str),
        pointer(10, "seccompProfile", Msg(&SECCOMP_PROFILE)),
        pointer(11, "appArmorProfile", Msg(&APP_ARMOR_PROFILE)),
        pointer(13, "seLinuxChangePolicy", Str),
    ],
};

static CAPABILITIES: Message = Message {
    name: "Capabilities",
    fields: &[slice(1, "add", Str), slice(2, "drop", Str)],
};

static SE_LINUX_OPTIONS: Message = Message {
    name: "SELinuxOptions",
    fields: &[
        omitempty(1, "user", Str),
        omitempty(2, "role", Str),
        omitempty(3, "type", Str),
        omitempty(4, "level", Str),
    ],
};

static WINDOWS_OPTIONS: Message = Message {
    name: "WindowsSecurityContextOptions",
    fields: &[
        pointer(1, "gmsaCredentialSpecName", Str),
        pointer(2, "gmsaCredentialSpec", Str),
        pointer(3, "runAsUserName", Str),
        pointer(4, "hostProcess", Bool),
    ],
};

static SECCOMP_PROFILE: Message = Message {
    name: "SeccompProfile",
    fields: &[value(1, "type", Str), pointer(2, "localhostProfile", Str)],
};

static APP_ARMOR_PROFILE: Message = Message {
    name: "AppArmorProfile",
    fields: &[value(1, "type", Str), pointer(2, "localhostProfile", Str)],
};

static SYSCTL: Message = Message {
    name: "Sysctl",
    fields: &[value(1, "name", Str), value(2, "value", Str)],
};

// Scheduling.

static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        omitempty(1, "key", Str),
        omitempty(2, "operator", Str),
        omitempty(3, "value", Str),
        omitempty(4, "effect", Str),
        pointer(5, "tolerationSeconds", I64),
    ],
};

static AFFINITY: Message = Message {
    name: "Affinity",
    fields: &[
        pointer(1, "nodeAffinity", Msg(&NODE_AFFINITY)),
        pointer(2, "podAffinity", Msg(&POD_AFFINITY)),
        pointer(3, "podAntiAffinity", Msg(&POD_AFFINITY)),
    ],
};

static NODE_AFFINITY: Message = Message {
    name: "NodeAffinity",
    fields: &[
        pointer(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&NODE_SELECTOR),
        ),
        slice(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&PREFERRED_SCHEDULING_TERM),
        ),
    ],
};

static NODE_SELECTOR: Message = Message {
    name: "NodeSelector",
    fields: &[slice(1, "nodeSelectorTerms", Msg(&NODE_SELECTOR_TERM))],
};

static NODE_SELECTOR_TERM: Message = Message {
    name: "NodeSelectorTerm",
    fields: &[
        slice(1, "matchExpressions", Msg(&NODE_SELECTOR_REQUIREMENT)),
        slice(2, "matchFields", Msg(&NODE_SELECTOR_REQUIREMENT)),
    ],
};

static NODE_SELECTOR_REQUIREMENT: Message = Message {
    name: "NodeSelectorRequirement",
    fields: &[
        value(1, "key", Str),
        value(2, "operator", Str),
        slice(3, "values", Str),
    ],
};

static PREFERRED_SCHEDULING_TERM: Message = Message {
    name: "PreferredSchedulingTerm",
    fields: &[
        value(1, "weight", I32),
        value(2, "preference", Msg(&NODE_SELECTOR_TERM)),
    ],
};

/// `PodAffinity` and `PodAntiAffinity` share one layout.
static POD_AFFINITY: Message = Message {
    name: "PodAffinity",
    fields: &[
        slice(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Msg(&POD_AFFINITY_TERM),
        ),
        slice(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

static WEIGHTED_POD_AFFINITY_TERM: Message = Message {
    name: "WeightedPodAffinityTerm",
    fields: &[
        value(1, "weight", I32),
        value(2, "podAffinityTerm", Msg(&POD_AFFINITY_TERM)),
    ],
};

static POD_AFFINITY_TERM: Message = Message {
    name: "PodAffinityTerm",
    fields: &[
        pointer(1, "labelSelector", Msg(&LABEL_SELECTOR)),
        slice(2, "namespaces", Str),
        value(3, "topologyKey", Str),
        pointer(4, "namespaceSelector", Msg(&LABEL_SELECTOR)),
        slice(5, "matchLabelKeys", Str),
        slice(6, "mismatchLabelKeys", Str),
    ],
};

static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message {
    name: "TopologySpreadConstraint",
    fields: &[
        value(1, "maxSkew", I32),
        value(2, "topologyKey", Str),
        value(3, "whenUnsatisfiable", Str),
        pointer(4, "labelSelector", Msg(&LABEL_SELECTOR)),
        pointer(5, "minDomains", I32),
        pointer(6, "nodeAffinityPolicy", Str),
        pointer(7, "nodeTaintsPolicy", Str),
        slice(8, "matchLabelKeys", Str),
    ],
};

static HOST_ALIAS: Message = Message {
    name: "HostAlias",
    fields: &[value(1, "ip", Str), slice(2, "hostnames", Str)],
};

static POD_DNS_CONFIG: Message = Message {
    name: "PodDNSConfig",
    fields: &[
        slice(1, "nameservers", Str),
        slice(2, "searches", Str),
        slice(3, "options", Msg(&POD_DNS_CONFIG_OPTION)),
    ],
};

static POD_DNS_CONFIG_OPTION: Message = Message {
    name: "PodDNSConfigOption",
    fields: &[omitempty(1, "name", Str), pointer(2, "value", Str)],
};

static POD_READINESS_GATE: Message = Message {
    name: "PodReadinessGate",
    fields: &[value(1, "conditionType", Str)],
};

static POD_OS: Message = Message {
    name: "PodOS",
    fields: &[value(1, "name", Str)],
};

static POD_SCHEDULING_GATE: Message = Message {
    name: "PodSchedulingGate",
    fields: &[value(1, "name", Str)],
};

// Pod status.

static POD_STATUS: Message = Message {
    name: "PodStatus",
    fields: &[
        omitempty(17, "observedGeneration", I64),
        omitempty(1, "phase", Str),
        slice(2, "conditions", Msg(&POD_CONDITION)),
        omitempty(3, "message", Str),
        omitempty(4, "reason", Str),
        omitempty(11, "nominatedNodeName", Str),
        omitempty(5, "hostIP", Str),
        slice(16, "hostIPs", Msg(&IP_ADDRESS)),
        omitempty(6, "podIP", Str),
        slice(12, "podIPs", Msg(&IP_ADDRESS)),
        pointer(7, "startTime", Time),
        slice(10, "initContainerStatuses", Msg(&CONTAINER_STATUS)),
        slice(8, "containerStatuses", Msg(&CONTAINER_STATUS)),
        omitempty(9, "qosClass", Str),
        slice(13, "ephemeralContainerStatuses", Msg(&CONTAINER_STATUS)),
        omitempty(14, "resize", Str),
    ],
};

static POD_CONDITION: Message = Message {
    name: "PodCondition",
    fields: &[
        value(1, "type", Str),
        omitempty(7, "observedGeneration", I64),
        value(2, "status", Str),
        omitempty(3, "lastProbeTime", Time),
        omitempty(4, "lastTransitionTime", Time),
        omitempty(5, "reason", Str),
        omitempty(6, "message", Str),
    ],
};

/// `HostIP` and `PodIP` share one layout.
static IP_ADDRESS: Message = Message {
    name: "PodIP",
    fields: &[value(1, "ip", Str)],
};

static CONTAINER_STATUS: Message = Message {
    name: "ContainerStatus",
    fields: &[
        value(1, "name", Str),
        omitempty(2, "state", Msg(&CONTAINER_STATE)),
        omitempty(3, "lastState", Msg(&CONTAINER_STATE)),
        value(4, "ready", Bool),
        value(5, "restartCount", I32),
        value(6, "image", Str),
        value(7, "imageID", Str),
        omitempty(8, "containerID", Str),
        pointer(9, "started", Bool),
        map(10, "allocatedResources", Quantity),
        pointer(11, "resources", Msg(&RESOURCE_REQUIREMENTS)),
        pointer(15, "stopSignal", Str),
    ],
};

static CONTAINER_STATE: Message = Message {
    name: "ContainerState",
    fields: &[
        pointer(1, "waiting", Msg(&CONTAINER_STATE_WAITING)),
        pointer(2, "running", Msg(&CONTAINER_STATE_RUNNING)),
        pointer(3, "terminated", Msg(&CONTAINER_STATE_TERMINATED)),
    ],
};

static CONTAINER_STATE_WAITING: Message = Message {
    name: "ContainerStateWaiting",
    fields: &[omitempty(1, "reason", Str), omitempty(2, "message", Str)],
};

static CONTAINER_STATE_RUNNING: Message = Message {
    name: "ContainerStateRunning",
    fields: &[omitempty(1, "startedAt", Time)],
};

static CONTAINER_STATE_TERMINATED: Message = Message {
    name: "ContainerStateTerminated",
    fields: &[
        value(1, "exitCode", I32),
        omitempty(2, "signal", I32),
        omitempty(3, "reason", Str),
        omitempty(4, "message", Str),
        omitempty(5, "startedAt", Time),
        omitempty(6, "finishedAt", Time),
        omitempty(7, "containerID", Str),
    ],
};
