#!/usr/bin/env python3
"""Acceptance tests for mast's API server with the official Kubernetes Python client.

Run against a live server: ``KUBECONFIG=/path/to/kubeconfig python3 api_client.py``.
The suite works in one fresh namespace with a random name, deleted at the end, and
exits non-zero when any test fails. Only the standard library and the ``kubernetes``
package are used.

``test_expired_resource_version`` expects the server to run with
``--watch-cache-size 64`` (as the Rust runner ``tests/python_client.rs`` starts it): it
makes more than 64 changes and then watches from before them.
"""

import http.client
import json
import os
import random
import string
import unittest
import urllib.error
import urllib.parse
import urllib.request

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

# The namespace every test works in; created in setUpModule.
NS = None

# A watch that stays silent this long (seconds) fails its test instead of hanging.
WATCH_READ_TIMEOUT = 15

# Mutations made by test_expired_resource_version; the server's watch cache holds 64.
EXPIRE_CHANGES = 80


def random_suffix(n=8):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def setUpModule():
    global NS
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])
    NS = "py-" + random_suffix()
    client.CoreV1Api().create_namespace({"metadata": {"name": NS}})


def tearDownModule():
    if NS is not None:
        client.CoreV1Api().delete_namespace(NS)


def server_url():
    return client.Configuration.get_default_copy().host.rstrip("/")


def raw_request(method, path, body=None, headers=None):
    """One HTTP request to the server from the kubeconfig; returns (status, headers, text)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        server_url() + path, data=body, method=method, headers=headers or {}
    )
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8")


def status_body(exc):
    """The Status object of a failed call."""
    return json.loads(exc.body)


def configmap(name, data=None, labels=None):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data or {},
    }


def deployment(name, replicas=1):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


class ApiTestCase(unittest.TestCase):
    def setUp(self):
        self.core = client.CoreV1Api()
        self.apps = client.AppsV1Api()
        self.coordination = client.CoordinationV1Api()

    def watch_events(self, list_fn, resource_version, count=None, timeout_seconds=10, **kwargs):
        """Events of a watch from `resource_version`: the first `count`, or (without a
        count) all of them until the server ends the watch after `timeout_seconds`."""
        w = watch.Watch()
        events = []
        for event in w.stream(
            list_fn,
            namespace=NS,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            _request_timeout=WATCH_READ_TIMEOUT,
            **kwargs,
        ):
            events.append(event)
            if count is not None and len(events) >= count:
                w.stop()
                break
        if count is not None:
            self.assertEqual(len(events), count, "the watch ended before %d events" % count)
        return events

    def assertApiError(self, call, status, reason):
        with self.assertRaises(ApiException) as ctx:
            call()
        self.assertEqual(ctx.exception.status, status, ctx.exception.body)
        body = status_body(ctx.exception)
        self.assertEqual(body.get("kind"), "Status", body)
        self.assertEqual(body.get("reason"), reason, body)
        self.assertEqual(body.get("code"), status, body)
        return body


class Crud(ApiTestCase):
    """create/get/list/watch/patch/delete for each kind the issue names."""

    def crud_cycle(self, list_fn, create_fn, read_fn, patch_fn, delete_fn, body):
        name = body["metadata"]["name"]
        start_rv = list_fn(NS).metadata.resource_version
        self.assertTrue(start_rv, "a list carries a resourceVersion")

        created = create_fn(NS, body)
        self.assertTrue(created.metadata.uid, "uid is set")
        self.assertIsNotNone(created.metadata.creation_timestamp)
        self.assertGreater(int(created.metadata.resource_version), int(start_rv))

        fetched = read_fn(name, NS)
        self.assertEqual(fetched.metadata.uid, created.metadata.uid)
        self.assertEqual(fetched.metadata.resource_version, created.metadata.resource_version)

        names = [item.metadata.name for item in list_fn(NS).items]
        self.assertIn(name, names)

        # A dict body: the client sends a strategic merge patch.
        patched = patch_fn(name, NS, {"metadata": {"labels": {"patched": "yes"}}})
        self.assertEqual(patched.metadata.labels.get("patched"), "yes")
        for key, value in (body["metadata"].get("labels") or {}).items():
            self.assertEqual(patched.metadata.labels.get(key), value, "patch merges labels")

        delete_fn(name, NS)
        self.assertApiError(lambda: read_fn(name, NS), 404, "NotFound")

        events = self.watch_events(list_fn, start_rv, count=3)
        self.assertEqual(
            [(e["type"], e["object"].metadata.name) for e in events],
            [("ADDED", name), ("MODIFIED", name), ("DELETED", name)],
        )
        return created

    def test_pods(self):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "crud-pod", "labels": {"app": "crud"}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
        }
        created = self.crud_cycle(
            self.core.list_namespaced_pod,
            self.core.create_namespaced_pod,
            self.core.read_namespaced_pod,
            self.core.patch_namespaced_pod,
            self.core.delete_namespaced_pod,
            pod,
        )
        self.assertEqual(created.spec.restart_policy, "Always", "defaulted restartPolicy")

    def test_deployments(self):
        created = self.crud_cycle(
            self.apps.list_namespaced_deployment,
            self.apps.create_namespaced_deployment,
            self.apps.read_namespaced_deployment,
            self.apps.patch_namespaced_deployment,
            self.apps.delete_namespaced_deployment,
            deployment("crud-deploy", replicas=2),
        )
        self.assertEqual(created.metadata.generation, 1)
        self.assertEqual(created.spec.strategy.type, "RollingUpdate", "defaulted strategy")

    def test_services(self):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "crud-svc"},
            "spec": {"selector": {"app": "crud"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        created = self.crud_cycle(
            self.core.list_namespaced_service,
            self.core.create_namespaced_service,
            self.core.read_namespaced_service,
            self.core.patch_namespaced_service,
            self.core.delete_namespaced_service,
            service,
        )
        self.assertEqual(created.spec.type, "ClusterIP", "defaulted service type")
        self.assertEqual(created.spec.ports[0].protocol, "TCP", "defaulted protocol")

    def test_configmaps(self):
        self.crud_cycle(
            self.core.list_namespaced_config_map,
            self.core.create_namespaced_config_map,
            self.core.read_namespaced_config_map,
            self.core.patch_namespaced_config_map,
            self.core.delete_namespaced_config_map,
            configmap("crud-cm", {"a": "1"}, {"app": "crud"}),
        )

    def test_leases(self):
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "crud-lease"},
            "spec": {
                "holderIdentity": "master-1",
                "leaseDurationSeconds": 15,
                "renewTime": "2025-01-01T00:00:00.000000Z",
            },
        }
        created = self.crud_cycle(
            self.coordination.list_namespaced_lease,
            self.coordination.create_namespaced_lease,
            self.coordination.read_namespaced_lease,
            self.coordination.patch_namespaced_lease,
            self.coordination.delete_namespaced_lease,
            lease,
        )
        self.assertEqual(created.spec.holder_identity, "master-1")
        self.assertEqual(created.spec.lease_duration_seconds, 15)


class Watches(ApiTestCase):
    def test_watch_resumed_from_list_misses_nothing(self):
        label = "suite=resume"
        core = self.core
        core.create_namespaced_config_map(NS, configmap("resume-before", {"step": "0"}, {"suite": "resume"}))
        rv = core.list_namespaced_config_map(NS, label_selector=label).metadata.resource_version

        expected = []
        for i in range(3):
            name = "resume-%d" % i
            core.create_namespaced_config_map(NS, configmap(name, {"step": "created"}, {"suite": "resume"}))
            expected.append(("ADDED", name, "created"))
        for i in range(3):
            name = "resume-%d" % i
            core.patch_namespaced_config_map(name, NS, {"data": {"step": "updated"}})
            expected.append(("MODIFIED", name, "updated"))
        core.delete_namespaced_config_map("resume-1", NS)
        expected.append(("DELETED", "resume-1", "updated"))
        before = core.read_namespaced_config_map("resume-before", NS)
        before.data = {"step": "replaced"}
        core.replace_namespaced_config_map("resume-before", NS, before)
        expected.append(("MODIFIED", "resume-before", "replaced"))
        core.create_namespaced_config_map(NS, configmap("resume-3", {"step": "created"}, {"suite": "resume"}))
        expected.append(("ADDED", "resume-3", "created"))

        # Read the watch to its end (timeoutSeconds) so extra events would show too.
        events = self.watch_events(
            core.list_namespaced_config_map, rv, timeout_seconds=2, label_selector=label
        )
        got = [
            (e["type"], e["object"].metadata.name, (e["object"].data or {}).get("step"))
            for e in events
        ]
        self.assertEqual(got, expected)
        versions = [int(e["object"].metadata.resource_version) for e in events]
        self.assertEqual(versions, sorted(set(versions)), "resourceVersions increase")
        self.assertGreater(versions[0], int(rv))

    def test_expired_resource_version(self):
        core = self.core
        labels = {"suite": "expire"}
        first = core.create_namespaced_config_map(NS, configmap("expire-first", {"n": "0"}, labels))
        old_rv = first.metadata.resource_version
        for i in range(1, EXPIRE_CHANGES + 1):
            core.patch_namespaced_config_map("expire-first", NS, {"data": {"n": str(i)}})

        # With timeout_seconds set, the client raises on an ERROR event (or an HTTP error)
        # instead of retrying: either way an ApiException with status 410.
        with self.assertRaises(ApiException) as ctx:
            for event in watch.Watch().stream(
                core.list_namespaced_config_map,
                namespace=NS,
                resource_version=old_rv,
                timeout_seconds=5,
                _request_timeout=WATCH_READ_TIMEOUT,
            ):
                self.fail("expected 410 for a resourceVersion %d changes back, got an event %s"
                          % (EXPIRE_CHANGES, event["type"]))
        self.assertEqual(ctx.exception.status, 410, ctx.exception.reason)

        # Relist, then watch from the list's resourceVersion.
        listed = core.list_namespaced_config_map(NS, label_selector="suite=expire")
        self.assertEqual([cm.metadata.name for cm in listed.items], ["expire-first"])
        self.assertEqual(listed.items[0].data, {"n": str(EXPIRE_CHANGES)})
        core.create_namespaced_config_map(NS, configmap("expire-second", {}, labels))
        events = self.watch_events(
            core.list_namespaced_config_map,
            listed.metadata.resource_version,
            count=1,
            label_selector="suite=expire",
        )
        self.assertEqual(events[0]["type"], "ADDED")
        self.assertEqual(events[0]["object"].metadata.name, "expire-second")


class Writes(ApiTestCase):
    def test_stale_update_conflicts(self):
        core = self.core
        original = core.create_namespaced_config_map(NS, configmap("stale", {"v": "0"}))
        fresh = core.read_namespaced_config_map("stale", NS)
        fresh.data = {"v": "1"}
        updated = core.replace_namespaced_config_map("stale", NS, fresh)
        self.assertNotEqual(updated.metadata.resource_version, original.metadata.resource_version)

        original.data = {"v": "2"}
        self.assertApiError(
            lambda: core.replace_namespaced_config_map("stale", NS, original), 409, "Conflict"
        )
        self.assertEqual(core.read_namespaced_config_map("stale", NS).data, {"v": "1"})

    def test_strategic_merge_patch_dict(self):
        core = self.core
        core.create_namespaced_config_map(
            NS, configmap("smp", {"a": "1", "b": "2"}, {"x": "1"})
        )
        patched = core.patch_namespaced_config_map(
            "smp", NS, {"metadata": {"labels": {"y": "2"}}, "data": {"b": "20", "c": "3"}}
        )
        self.assertEqual(patched.data, {"a": "1", "b": "20", "c": "3"})
        self.assertEqual(patched.metadata.labels, {"x": "1", "y": "2"})
        patched = core.patch_namespaced_config_map("smp", NS, {"data": {"a": None}})
        self.assertEqual(patched.data, {"b": "20", "c": "3"}, "null deletes a map key")

        self.apps.create_namespaced_deployment(NS, deployment("smp-deploy"))
        patched = self.apps.patch_namespaced_deployment(
            "smp-deploy",
            NS,
            {"spec": {"replicas": 3, "template": {"metadata": {"annotations": {"rev": "2"}}}}},
        )
        self.assertEqual(patched.spec.replicas, 3)
        self.assertEqual(patched.spec.template.metadata.annotations, {"rev": "2"})
        self.assertEqual(patched.spec.template.metadata.labels, {"app": "smp-deploy"})
        self.assertEqual([c.name for c in patched.spec.template.spec.containers], ["web"])
        self.assertEqual(patched.metadata.generation, 2, "a spec change bumps generation")

    def test_json_patch_list(self):
        core = self.core
        core.create_namespaced_config_map(NS, configmap("jsonpatch", {"a": "1", "b": "2", "c": "3"}))
        patched = core.patch_namespaced_config_map(
            "jsonpatch",
            NS,
            [
                {"op": "replace", "path": "/data/b", "value": "200"},
                {"op": "add", "path": "/data/d", "value": "4"},
                {"op": "remove", "path": "/data/c"},
                {"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}},
            ],
        )
        self.assertEqual(patched.data, {"a": "1", "b": "200", "d": "4"})
        self.assertEqual(patched.metadata.labels, {"patched": "json"})
        self.assertEqual(core.read_namespaced_config_map("jsonpatch", NS).data, patched.data)


class Lists(ApiTestCase):
    def test_paging_returns_each_object_once(self):
        core = self.core
        expected = []
        for i in range(25):
            name = "page-%02d" % i
            core.create_namespaced_config_map(NS, configmap(name, labels={"suite": "paging"}))
            expected.append(name)

        seen = []
        token = None
        first_rv = None
        pages = 0
        while True:
            kwargs = {"label_selector": "suite=paging", "limit": 7}
            if token:
                kwargs["_continue"] = token
            page = core.list_namespaced_config_map(NS, **kwargs)
            pages += 1
            self.assertLessEqual(len(page.items), 7)
            if first_rv is None:
                first_rv = page.metadata.resource_version
                # Created after the first page: this paged list must not show it.
                core.create_namespaced_config_map(
                    NS, configmap("page-zz-late", labels={"suite": "paging"})
                )
            else:
                self.assertEqual(page.metadata.resource_version, first_rv,
                                 "all pages are served at one revision")
            seen.extend(item.metadata.name for item in page.items)
            token = page.metadata._continue
            if not token:
                break
            self.assertLess(pages, 30, "paging does not terminate")
        self.assertGreaterEqual(pages, 4)
        self.assertEqual(seen, expected, "each object exactly once, in order")
        everything = core.list_namespaced_config_map(NS, label_selector="suite=paging")
        self.assertEqual(len(everything.items), 26)

    def test_label_and_field_selectors(self):
        core = self.core
        for name, labels in [
            ("sel-a", {"suite": "sel", "app": "web", "tier": "front"}),
            ("sel-b", {"suite": "sel", "app": "web"}),
            ("sel-c", {"suite": "sel", "app": "db", "tier": "back"}),
        ]:
            core.create_namespaced_config_map(NS, configmap(name, labels=labels))

        def names(**kwargs):
            return [cm.metadata.name for cm in core.list_namespaced_config_map(NS, **kwargs).items]

        self.assertEqual(names(label_selector="suite=sel,app=web"), ["sel-a", "sel-b"])
        self.assertEqual(names(label_selector="suite=sel,app!=web"), ["sel-c"])
        self.assertEqual(names(label_selector="suite=sel,app in (web,db)"), ["sel-a", "sel-b", "sel-c"])
        self.assertEqual(names(label_selector="suite=sel,!tier"), ["sel-b"])
        self.assertEqual(names(label_selector="suite=sel,tier"), ["sel-a", "sel-c"])
        self.assertEqual(names(field_selector="metadata.name=sel-b"), ["sel-b"])
        self.assertEqual(
            names(label_selector="suite=sel", field_selector="metadata.name!=sel-b"),
            ["sel-a", "sel-c"],
        )


class Formats(ApiTestCase):
    def test_yaml_in_and_out(self):
        path = "/api/v1/namespaces/%s/configmaps" % NS
        document = (
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:\n"
            "  name: yaml-cm\n"
            "  labels:\n"
            "    format: yaml\n"
            "data:\n"
            "  greeting: hello\n"
            "  nested: 'a: b'\n"
        )
        status, _, text = raw_request(
            "POST",
            path,
            document.encode("utf-8"),
            {"Content-Type": "application/yaml", "Accept": "application/json"},
        )
        self.assertEqual(status, 201, text)
        created = json.loads(text)
        self.assertEqual(created["metadata"]["name"], "yaml-cm")
        self.assertEqual(created["data"], {"greeting": "hello", "nested": "a: b"})

        status, headers, text = raw_request(
            "GET", path + "/yaml-cm", headers={"Accept": "application/yaml"}
        )
        self.assertEqual(status, 200, text)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/yaml"),
                        headers.get("Content-Type"))
        self.assertFalse(text.lstrip().startswith("{"), "YAML, not JSON:\n" + text)
        lines = [line.strip() for line in text.splitlines()]
        for wanted in ("kind: ConfigMap", "apiVersion: v1", "name: yaml-cm",
                       "namespace: " + NS, "greeting: hello", "format: yaml"):
            self.assertIn(wanted, lines, "YAML output lacks %r:\n%s" % (wanted, text))

        status, _, text = raw_request(
            "GET", path + "?labelSelector=format%3Dyaml", headers={"Accept": "application/yaml"}
        )
        self.assertEqual(status, 200, text)
        lines = [line.strip() for line in text.splitlines()]
        self.assertIn("kind: ConfigMapList", lines, text)
        self.assertTrue(any(line.endswith("name: yaml-cm") for line in lines), text)

        # The object written as YAML reads back the same through the typed client.
        fetched = self.core.read_namespaced_config_map("yaml-cm", NS)
        self.assertEqual(fetched.data, {"greeting": "hello", "nested": "a: b"})
        self.assertEqual(fetched.metadata.labels, {"format": "yaml"})


class Errors(ApiTestCase):
    def test_not_found(self):
        body = self.assertApiError(
            lambda: self.core.read_namespaced_config_map("does-not-exist", NS), 404, "NotFound"
        )
        self.assertEqual(body.get("details", {}).get("name"), "does-not-exist")

    def test_already_exists(self):
        self.core.create_namespaced_config_map(NS, configmap("dup"))
        self.assertApiError(
            lambda: self.core.create_namespaced_config_map(NS, configmap("dup")),
            409,
            "AlreadyExists",
        )

    def test_invalid_name(self):
        body = self.assertApiError(
            lambda: self.core.create_namespaced_config_map(NS, configmap("Not_A_Valid_Name")),
            422,
            "Invalid",
        )
        causes = body.get("details", {}).get("causes", [])
        self.assertTrue(any(c.get("field") == "metadata.name" for c in causes), body)

    def test_malformed_body(self):
        status, _, text = raw_request(
            "POST",
            "/api/v1/namespaces/%s/configmaps" % NS,
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {',
            {"Content-Type": "application/json"},
        )
        self.assertEqual(status, 400, text)
        body = json.loads(text)
        self.assertEqual((body.get("kind"), body.get("reason")), ("Status", "BadRequest"), body)

    def test_body_too_large(self):
        big = json.dumps(configmap("too-big", {"blob": "x" * (3 * 1024 * 1024 + 1024)})).encode()
        url = urllib.parse.urlsplit(server_url())
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            connection.putrequest("POST", "/api/v1/namespaces/%s/configmaps" % NS)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(big)))
            connection.endheaders()
            try:
                connection.send(big)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer and close before reading all of it; the answer
                # is still waiting in our receive buffer.
                pass
            response = connection.getresponse()
            text = response.read().decode("utf-8")
        finally:
            connection.close()
        self.assertEqual(response.status, 413, text)
        self.assertApiError(
            lambda: self.core.read_namespaced_config_map("too-big", NS), 404, "NotFound"
        )


if __name__ == "__main__":
    unittest.main(verbosity=2)
