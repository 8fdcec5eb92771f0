// bgw-helm-render renders a Helm chart the way `helm template` does, for the chart tests of a machine without
// Helm: Go's text/template with the sprig functions and Helm's own (include, tpl, required, lookup,
// toYaml, fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray), the objects .Values (values.yaml
// merged with each -f file in order, null deleting a key), .Release, .Chart, .Capabilities, .Template and
// .Files (Get, GetBytes, Glob, Lines, AsConfig, AsSecrets). lookup answers from --lookup FILE (a JSON
// object "apiVersion/kind/namespace/name" -> object) and otherwise with an empty map, like helm template.
//
// Output: every rendered manifest as "---\n# Source: CHART/templates/FILE\n..." on stdout, NOTES.txt with
// --notes, the merged values as JSON with --values-json FILE. Exit 1 with the template error on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// Files is Helm's .Files: the chart's files other than templates/, by path relative to the chart.
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Get(name string) string      { return string(f[name]) }

// Glob returns the files whose path matches pattern (path.Match syntax, "**" as any number of segments).
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if globMatch(pattern, name) {
			out[name] = data
		}
	}
	return out
}

func (f Files) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func (f Files) AsConfig() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYAML(m)
}

func (f Files) AsSecrets() string {
	m := map[string][]byte{}
	for name, data := range f {
		m[path.Base(name)] = data
	}
	return toYAML(m)
}

func globMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "**") {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	pp, np := strings.Split(pattern, "/"), strings.Split(name, "/")
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(pp) {
			return j == len(np)
		}
		if pp[i] == "**" {
			for k := j; k <= len(np); k++ {
				if match(i+1, k) {
					return true
				}
			}
			return false
		}
		if j == len(np) {
			return false
		}
		ok, _ := path.Match(pp[i], np[j])
		return ok && match(i+1, j+1)
	}
	return match(0, 0)
}

// Helm's YAML and JSON functions.
func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

// mergeValues merges src over dst like Helm: maps merge key by key, anything else replaces, null deletes.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = mergeValues(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// dropNulls removes the null leaves of the chart's own values.yaml, as Helm's coalescing does.
func dropNulls(m map[string]interface{}) {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		} else if sub, ok := v.(map[string]interface{}); ok {
			dropNulls(sub)
		}
	}
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return m, nil
}

type chartMeta struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	APIVersion  string   `json:"apiVersion"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	KubeVersion string   `json:"kubeVersion"`
	Keywords    []string `json:"keywords"`
}

type renderer struct {
	root     *template.Template
	values   map[string]interface{}
	top      map[string]interface{}
	lookups  map[string]interface{}
	basePath string
}

// scope is the top-level object with .Template set for the template being rendered.
func (r *renderer) scope(name string) map[string]interface{} {
	s := map[string]interface{}{}
	for k, v := range r.top {
		s[k] = v
	}
	s["Template"] = map[string]interface{}{"Name": name, "BasePath": r.basePath}
	return s
}

func (r *renderer) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm removes these two
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, fmt.Errorf("%s", msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		key := strings.Join([]string{apiVersion, kind, namespace, name}, "/")
		if obj, ok := r.lookups[key].(map[string]interface{}); ok {
			return obj, nil
		}
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := r.root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := r.root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Option("missingkey=zero").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

func main() {
	var valueFiles multiFlag
	chartDir := flag.String("chart", "", "the chart's directory")
	flag.Var(&valueFiles, "f", "a values file merged over values.yaml (repeatable)")
	release := flag.String("release", "bgw", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	upgrade := flag.Bool("upgrade", false, "render as an upgrade (.Release.IsUpgrade)")
	lookupFile := flag.String("lookup", "", "JSON object: \"apiVersion/kind/namespace/name\" -> object answered by lookup")
	notes := flag.Bool("notes", false, "render NOTES.txt instead of the manifests")
	valuesJSON := flag.String("values-json", "", "write the merged values as JSON to this file")
	kubeVersion := flag.String("kube-version", "v1.29.0", "the .Capabilities.KubeVersion")
	var apiVersions multiFlag
	flag.Var(&apiVersions, "api-versions", "an API version .Capabilities.APIVersions.Has knows (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fmt.Fprintln(os.Stderr, "usage: bgw-helm-render --chart DIR [-f values.yaml]... [--release NAME] [--namespace NS]")
		os.Exit(2)
	}
	if err := run(*chartDir, valueFiles, *release, *namespace, *upgrade, *lookupFile, *notes, *valuesJSON,
		*kubeVersion, apiVersions); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

type capabilities struct {
	KubeVersion map[string]string
	APIVersions apiVersionSet
}

type apiVersionSet []string

func (s apiVersionSet) Has(v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func run(chartDir string, valueFiles []string, release, namespace string, upgrade bool, lookupFile string,
	notes bool, valuesJSON, kubeVersion string, apiVersions []string) error {
	cb, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	var meta chartMeta
	if err := yaml.Unmarshal(cb, &meta); err != nil {
		return fmt.Errorf("Chart.yaml: %v", err)
	}
	if meta.APIVersion != "v2" || meta.Name == "" || meta.Version == "" {
		return fmt.Errorf("Chart.yaml: apiVersion v2, name and version are required")
	}

	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	dropNulls(values)
	for _, f := range valueFiles {
		m, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		values = mergeValues(values, m)
	}
	if valuesJSON != "" {
		b, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(valuesJSON, b, 0o644); err != nil {
			return err
		}
	}

	lookups := map[string]interface{}{}
	if lookupFile != "" {
		b, err := os.ReadFile(lookupFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &lookups); err != nil {
			return fmt.Errorf("%s: %v", lookupFile, err)
		}
	}

	files := Files{}
	var tplNames []string
	tplText := map[string]string{}
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if info.IsDir() {
			return nil
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: a symlink (helm package would not follow it)", rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			name := meta.Name + "/" + rel
			tplNames = append(tplNames, name)
			tplText[name] = string(b)
		} else if rel != "Chart.yaml" && rel != ".helmignore" {
			files[rel] = b
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(tplNames)

	r := &renderer{values: values, lookups: lookups, basePath: meta.Name + "/templates"}
	r.root = template.New("chart").Option("missingkey=zero")
	r.root.Funcs(r.funcs())
	for _, name := range tplNames {
		if _, err := r.root.New(name).Parse(tplText[name]); err != nil {
			return err
		}
	}
	major, minor := "1", "29"
	if v := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3); len(v) >= 2 {
		major, minor = v[0], v[1]
	}
	r.top = map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": !upgrade,
			"IsUpgrade": upgrade, "Revision": map[bool]int{false: 1, true: 2}[upgrade],
		},
		"Chart": map[string]interface{}{
			"Name": meta.Name, "Version": meta.Version, "AppVersion": meta.AppVersion,
			"APIVersion": meta.APIVersion, "Description": meta.Description, "Type": meta.Type,
			"KubeVersion": meta.KubeVersion, "Keywords": meta.Keywords,
		},
		"Capabilities": capabilities{
			KubeVersion: map[string]string{"Version": kubeVersion, "GitVersion": kubeVersion,
				"Major": major, "Minor": minor},
			APIVersions: append(apiVersionSet{"v1", "apps/v1", "policy/v1", "autoscaling/v2",
				"rbac.authorization.k8s.io/v1", "discovery.k8s.io/v1"}, apiVersions...),
		},
		"Files": files,
	}

	for _, name := range tplNames {
		base := path.Base(name)
		isNotes := base == "NOTES.txt"
		if notes != isNotes || strings.HasPrefix(base, "_") {
			continue
		}
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") &&
			!strings.HasSuffix(base, ".tpl") {
			continue
		}
		if strings.HasSuffix(base, ".tpl") {
			continue
		}
		var buf bytes.Buffer
		if err := r.root.ExecuteTemplate(&buf, name, r.scope(name)); err != nil {
			return err
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(out) == "" {
			continue
		}
		if notes {
			fmt.Print(out)
		} else {
			fmt.Printf("---\n# Source: %s\n%s\n", name, strings.TrimLeft(out, "\n"))
		}
	}
	return nil
}
