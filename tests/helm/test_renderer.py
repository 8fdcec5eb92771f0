"""The renderer the chart tests rely on (render/main.go) behaves as Helm does for what the chart uses:
values merging (maps merged, lists replaced, null deletes), include, tpl, required, lookup (empty, or from
--lookup), fail, .Files (Get, Glob, AsConfig), .Release/.Chart/.Template, toYaml (sorted keys, no final
newline), fromYaml (errors under "Error"), missing keys rendering as nothing, env/expandenv absent,
partials (_*.tpl) and NOTES.txt not rendered as manifests, a symlink in the chart refused. Each case is a
throwaway chart in a temporary directory."""

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

import yaml

import chart_lib as cl

CHART_YAML = "apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: \"9.9\"\n"


class RendererTest(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="bgw-renderer-")
        self.write("Chart.yaml", CHART_YAML)
        self.write("values.yaml", "a: {b: 1, c: [1, 2], keep: x}\nname: world\nnothing: null\n")

    def tearDown(self):
        shutil.rmtree(self.d, True)

    def write(self, rel, text):
        path = os.path.join(self.d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def render(self, *args, ok=True):
        r = subprocess.run([cl.renderer(), "--chart", self.d, "--release", "rel", "--namespace", "ns"] + list(args),
                           capture_output=True, text=True)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout
        self.assertEqual(r.returncode, 1, r.stdout)
        return r.stderr

    def docs(self, *args):
        return [d for d in yaml.safe_load_all(self.render(*args)) if d is not None]

    def test_values_merge_like_helm(self):
        self.write("templates/cm.yaml", "v: {{ toJson .Values }}\n")
        override = self.write("over.yaml", "a: {b: 2, c: [3], keep: null, new: z}\nname: null\n")
        v = self.docs("-f", override)[0]["v"]
        self.assertEqual(v, {"a": {"b": 2, "c": [3], "new": "z"}})

    def test_objects_and_helpers(self):
        self.write("templates/_helpers.tpl", '{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end }}\n')
        self.write("templates/x.yaml", """\
            name: {{ include "demo.name" . }}
            ns: {{ .Release.Namespace }}
            install: {{ .Release.IsInstall }}
            service: {{ .Release.Service }}
            app: {{ .Chart.AppVersion | quote }}
            chartVersion: {{ .Chart.Version }}
            template: {{ .Template.Name }}
            tpl: {{ tpl "hello {{ .Values.name }} from {{ .Release.Name }}" . | quote }}
            missing: "{{ .Values.absent }}"
            yaml: |
              {{- toYaml (dict "z" 1 "a" (list 1 2)) | nindent 2 }}
            raw: {{ toYaml (list 1) | quote }}
            bad: {{ hasKey (fromYaml "a: [") "Error" }}
            good: {{ (fromYaml "k: v").k }}
            """)
        d = self.docs()[0]
        self.assertEqual(d["name"], "demo-rel")
        self.assertEqual((d["ns"], d["install"], d["service"]), ("ns", True, "Helm"))
        self.assertEqual((d["app"], d["chartVersion"]), ("9.9", "1.2.3"))
        self.assertEqual(d["template"], "demo/templates/x.yaml")
        self.assertEqual(d["tpl"], "hello world from rel")
        self.assertEqual(d["missing"], "")
        self.assertEqual(d["yaml"], "a:\n- 1\n- 2\nz: 1\n")     # sorted keys; the newline is the block's
        self.assertEqual(d["raw"], "- 1")
        self.assertIs(d["bad"], True)
        self.assertEqual(d["good"], "v")
        # Partials render nothing of their own.
        self.assertNotIn("_helpers.tpl", self.render())

    def test_upgrade_flag(self):
        self.write("templates/x.yaml", "upgrade: {{ .Release.IsUpgrade }}\nrev: {{ .Release.Revision }}\n")
        self.assertEqual(self.docs("--upgrade")[0], {"upgrade": True, "rev": 2})

    def test_required_and_fail(self):
        self.write("templates/x.yaml", '{{ required "name is required" .Values.absent }}\n')
        self.assertIn("name is required", self.render(ok=False))
        self.write("templates/x.yaml", '{{ fail "no way" }}\n')
        self.assertIn("no way", self.render(ok=False))

    def test_env_functions_absent(self):
        self.write("templates/x.yaml", 'home: {{ env "HOME" }}\n')
        self.assertIn("env", self.render(ok=False))

    def test_lookup(self):
        self.write("templates/x.yaml", """\
            {{- $s := lookup "v1" "Secret" "ns" "s" }}
            found: {{ if $s }}{{ $s.data.k }}{{ else }}none{{ end }}
            """)
        self.assertEqual(self.docs()[0], {"found": "none"})
        lk = self.write("lookup.json", '{"v1/Secret/ns/s": {"data": {"k": "dmFs"}}}')
        self.assertEqual(self.docs("--lookup", lk)[0], {"found": "dmFs"})

    def test_files(self):
        self.write("files/a.json", '{"x": 1}\n')
        self.write("files/b.json", '{"y": 2}\n')
        self.write("files/c.txt", "no\n")
        self.write("templates/x.yaml", """\
            {{- range $path, $_ := .Files.Glob "files/*.json" }}
            ---
            path: {{ $path }}
            body: {{ $.Files.Get $path | trim | quote }}
            {{- end }}
            ---
            config:
              {{- (.Files.Glob "files/*.txt").AsConfig | nindent 2 }}
            absent: "{{ .Files.Get "files/none" }}"
            templatesHidden: "{{ .Files.Get "templates/x.yaml" }}"
            """)
        d = self.docs()
        self.assertEqual(d[0], {"path": "files/a.json", "body": '{"x": 1}'})
        self.assertEqual(d[1], {"path": "files/b.json", "body": '{"y": 2}'})
        self.assertEqual(d[2], {"config": {"c.txt": "no\n"}, "absent": "", "templatesHidden": ""})

    def test_notes_apart(self):
        self.write("templates/NOTES.txt", "Hello {{ .Release.Name }}\n")
        self.write("templates/x.yaml", "k: v\n")
        self.assertNotIn("Hello", self.render())
        self.assertEqual(self.render("--notes"), "Hello rel\n")

    def test_symlink_refused(self):
        self.write("templates/x.yaml", "k: v\n")
        os.symlink("/etc/hostname", os.path.join(self.d, "files-link"))
        self.assertIn("symlink", self.render(ok=False))

    def test_values_json(self):
        self.write("templates/x.yaml", "k: v\n")
        out = os.path.join(self.d, "merged.json")
        self.render("--values-json", out)
        with open(out) as f:
            self.assertEqual(yaml.safe_load(f), {"a": {"b": 1, "c": [1, 2], "keep": "x"}, "name": "world"})


if __name__ == "__main__":
    unittest.main()
