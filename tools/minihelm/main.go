// minihelm renders a Helm chart the way `helm template` does, for offline CI where no helm binary
// can be installed: Go text/template + sprig (minus env/expandenv, as helm), plus helm's own
// include, tpl, toYaml, fromYaml, toJson, fromJson, required, fail and lookup (always empty).
// Values: chart values.yaml, deep-merged with each -f file in order, then each --set a.b=v.
// .Files supports Get (a file under the chart directory, as helm's .Files.Get).
// Not covered: other .Files methods, subcharts/dependencies, hooks, schema validation (CI does that with ajv).
//
//	minihelm template [--name N] [--namespace NS] [-f values.yaml]... [--set k=v]... [--api-versions g/v]... [--notes] CHART
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// APIVersions answers .Capabilities.APIVersions.Has like helm's.
type APIVersions []string

func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// chartFiles is .Files: Get returns a file of the chart (relative to its directory) or "" as helm does.
type chartFiles struct{ dir string }

func (f chartFiles) Get(name string) string {
	clean := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(f.dir, clean))
	if err != nil {
		return ""
	}
	return string(b)
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "minihelm: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(path string) map[string]interface{} {
	b, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		die("%s: %v", path, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m
}

// merge overlays src onto dst; a null in src deletes the key, as in helm.
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// setValue applies one --set a.b.c=v (scalars only: int, bool, null, else string).
func setValue(values map[string]interface{}, expr string) {
	i := strings.Index(expr, "=")
	if i < 1 {
		die("--set %q: want key=value", expr)
	}
	keys, raw := strings.Split(expr[:i], "."), expr[i+1:]
	var v interface{} = raw
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		v = float64(n) // as YAML→JSON decoding gives
	} else if raw == "true" || raw == "false" {
		v = raw == "true"
	} else if raw == "null" {
		v = nil
	}
	m := values
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	merge(m, map[string]interface{}{keys[len(keys)-1]: v})
}

func toYAML(v interface{}) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] != "template" {
		die("usage: minihelm template [--name N] [--namespace NS] [-f values.yaml]... [--set k=v]... [--api-versions g/v]... [--notes] CHART")
	}
	args = args[1:]
	var files, sets, apis multi
	name, ns, chartDir, notes := "release", "default", "", false
	for i := 0; i < len(args); i++ {
		next := func() string {
			i++
			if i >= len(args) {
				die("%s needs a value", args[i-1])
			}
			return args[i]
		}
		switch a := args[i]; a {
		case "--name":
			name = next()
		case "--namespace", "-n":
			ns = next()
		case "-f", "--values":
			files.Set(next())
		case "--set":
			sets.Set(next())
		case "--api-versions":
			apis.Set(next())
		case "--notes":
			notes = true
		default:
			if strings.HasPrefix(a, "-") || chartDir != "" {
				die("unexpected argument %q", a)
			}
			chartDir = a
		}
	}
	if chartDir == "" {
		die("no chart directory given")
	}

	meta := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	chart := map[string]interface{}{}
	for k, v := range meta { // helm exposes Chart.yaml keys capitalised: .Chart.Name, .Chart.AppVersion
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, f := range files {
		values = merge(values, readYAML(f))
	}
	for _, s := range sets {
		setValue(values, s)
	}
	chartName, _ := chart["Name"].(string)
	if chartName == "" {
		die("Chart.yaml has no name")
	}

	tpl := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(n string, data interface{}) (string, error) {
		if includeDepth++; includeDepth > 1000 {
			return "", errors.New("include: recursion too deep")
		}
		defer func() { includeDepth-- }()
		var buf bytes.Buffer
		err := tpl.ExecuteTemplate(&buf, n, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := tpl.Clone()
		if err != nil {
			return "", err
		}
		if t, err = t.New("tpl").Parse(text); err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string { b, _ := yaml.YAMLToJSON([]byte(toYAML(v))); return string(b) }
	funcs["fromJson"] = funcs["fromYaml"]
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["lookup"] = func(...string) map[string]interface{} { return map[string]interface{}{} }
	tpl.Funcs(funcs)

	tdir := filepath.Join(chartDir, "templates")
	var names []string
	err := filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		ext := filepath.Ext(p)
		if ext != ".yaml" && ext != ".yml" && ext != ".tpl" && ext != ".txt" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		n := chartName + "/" + filepath.ToSlash(rel)
		if _, err := tpl.New(n).Parse(string(b)); err != nil {
			return err
		}
		names = append(names, n)
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	sort.Strings(names)

	release := map[string]interface{}{
		"Name": name, "Namespace": ns, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}
	caps := map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": "v1.32.0", "GitVersion": "v1.32.0", "Major": "1", "Minor": "32"},
		"APIVersions": APIVersions(append([]string{"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}, apis...)),
	}
	var out bytes.Buffer
	for _, n := range names {
		base := filepath.Base(n)
		// partials render nothing by themselves; NOTES.txt only with --notes (and then alone)
		if strings.HasPrefix(base, "_") || (base == "NOTES.txt") != notes {
			continue
		}
		data := map[string]interface{}{
			"Values": values, "Release": release, "Chart": chart, "Capabilities": caps, "Files": chartFiles{chartDir},
			"Template": map[string]interface{}{"Name": n, "BasePath": chartName + "/templates"},
		}
		var buf bytes.Buffer
		if err := tpl.ExecuteTemplate(&buf, n, data); err != nil {
			die("%v", err)
		}
		s := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if notes {
			out.WriteString(s)
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(s))
	}
	os.Stdout.Write(out.Bytes())
}
