// tools/minihelm stands in for `helm template` in CI: the helm behaviours the chart relies on.
import t from 'tap';
import { join } from 'node:path';
import { exec, tool } from '../fixtures/deploy.js';

const chart = {
  'Chart.yaml': 'apiVersion: v2\nname: probe\nversion: 1.2.3\nappVersion: "4.5"\n',
  'values.yaml': 'a: { b: 1, keep: yes-kept, gone: here }\nlist: [x, y]\nname: world\ntext: "hi {{ .Values.name }}"\n',
  templates: {
    '_helpers.tpl': '{{- define "probe.greet" -}}hello {{ .Values.name }}{{- end }}\n',
    'out.yaml': [
      'chart: {{ .Chart.Name }}-{{ .Chart.Version }}-{{ .Chart.AppVersion }}',
      'release: {{ .Release.Name }}/{{ .Release.Namespace }}/{{ .Release.Service }}',
      'include: {{ include "probe.greet" . | upper }}',
      'tpl: {{ tpl .Values.text . }}',
      'a: {{- toYaml .Values.a | nindent 2 }}',
      'list: {{ toJson .Values.list }}',
      'missing: "{{ .Values.nope }}"',
      'template: {{ .Template.Name }}',
      'has: {{ .Capabilities.APIVersions.Has "policy/v1" }}/{{ .Capabilities.APIVersions.Has "x.example/v9" }}',
      'sha: {{ "abc" | sha256sum }}',
      '{{- if .Values.boom }}{{ fail "boom was set" }}{{ end }}',
      '{{- if .Values.need }}{{ required "need.value is required" .Values.need.value }}{{ end }}',
    ].join('\n'),
    'empty.yaml': '{{- if false }}\nnever: rendered\n{{- end }}\n',
    'NOTES.txt': 'notes for {{ .Release.Name }}\n',
  },
  'override.yaml': 'a: { b: 2, gone: null }\nlist: [z]\n',
};

const run = (dir: string, ...args: string[]) => exec(tool('minihelm'), ['template', '--name', 'rel', '-n', 'ns', ...args, join(dir, 'probe')]);

t.test('renders like helm template', async (t) => {
  const dir = t.testdir({ probe: chart });
  const r = run(dir, '-f', join(dir, 'probe/override.yaml'), '--set', 'a.c=true', '--set', 'name=you');
  t.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  t.match(out, /^---\n# Source: probe\/templates\/out\.yaml\n/, 'each document names its source');
  t.notMatch(out, /empty\.yaml|never|notes for/, 'empty output and NOTES.txt are left out');
  t.match(out, 'chart: probe-1.2.3-4.5');
  t.match(out, 'release: rel/ns/Helm');
  t.match(out, 'include: HELLO YOU', 'include + sprig pipeline, with --set applied');
  t.match(out, 'tpl: hi you', 'tpl renders a string against the values');
  t.match(out, 'a:\n  b: 2\n  c: true\n  keep: yes-kept\n', '-f merges maps, null deletes a key, --set parses booleans');
  t.notMatch(out, 'gone');
  t.match(out, 'list: ["z"]', 'lists are replaced, not merged');
  t.match(out, 'missing: ""', 'a missing value renders empty, never <no value>');
  t.match(out, 'template: probe/templates/out.yaml');
  t.match(out, 'has: true/false');
  t.match(out, 'sha: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const notes = run(dir, '--notes');
  t.equal(notes.stdout, 'notes for rel\n', '--notes renders NOTES.txt alone');
});

t.test('fail and required stop the render with their message', async (t) => {
  const dir = t.testdir({ probe: chart });
  let r = run(dir, '--set', 'boom=true');
  t.not(r.status, 0);
  t.match(r.stderr, 'boom was set');
  r = run(dir, '--set', 'need.other=1');
  t.not(r.status, 0);
  t.match(r.stderr, 'need.value is required');
  t.equal(run(dir, '--set', 'need.value=ok').status, 0);
  r = exec(tool('minihelm'), ['template', join(dir, 'nope')]);
  t.not(r.status, 0, 'a missing chart is an error');
});
