package web

import (
	"strings"
	"testing"
)

// xssCorpus is README input that tries to run script, load active
// content or restyle the page. Each case lists what must not survive.
var xssCorpus = []struct {
	name    string
	in      string
	forbids []string
}{
	{"script tag", "<script>alert(1)</script>", []string{"<script", "alert(1)"}},
	{"script in markdown paragraph", "hello <script src=//evil.example/x.js></script>", []string{"<script", "evil.example"}},
	{"img onerror", `<img src=x onerror="alert(1)">`, []string{"onerror", "alert"}},
	{"body onload", `<body onload=alert(1)>`, []string{"onload", "<body"}},
	{"event handler on div", `<div onclick="alert(1)" onmouseover='alert(2)'>x</div>`, []string{"onclick", "onmouseover"}},
	{"javascript link (html)", `<a href="javascript:alert(1)">x</a>`, []string{"javascript:"}},
	{"javascript link (markdown)", `[x](javascript:alert(1))`, []string{"javascript:"}},
	{"javascript link, entity-encoded", `<a href="&#106;avascript:alert(1)">x</a>`, []string{"avascript:", "&#106;"}},
	{"javascript link, mixed case and spaces", `<a href=" JaVaScRiPt:alert(1)">x</a>`, []string{"script:"}},
	{"vbscript link", `<a href="vbscript:msgbox(1)">x</a>`, []string{"vbscript:"}},
	{"data: html link", `[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`, []string{"data:text/html"}},
	{"markdown image javascript", `![x](javascript:alert(1))`, []string{"javascript:"}},
	{"svg onload", `<svg onload="alert(1)"><circle r=10 /></svg>`, []string{"<svg", "onload"}},
	{"svg script", `<svg><script>alert(1)</script></svg>`, []string{"<svg", "<script"}},
	{"svg use href", `<svg><use href="data:image/svg+xml;base64,AAAA#x"/></svg>`, []string{"<svg", "<use"}},
	{"math xlink", `<math><a xlink:href="javascript:alert(1)">x</a></math>`, []string{"javascript:", "xlink"}},
	{"iframe", `<iframe src="https://evil.example/"></iframe>`, []string{"<iframe"}},
	{"iframe srcdoc", `<iframe srcdoc="<script>alert(1)</script>"></iframe>`, []string{"<iframe", "srcdoc"}},
	{"object and embed", `<object data="x.swf"></object><embed src="x.swf">`, []string{"<object", "<embed"}},
	{"form and input", `<form action="https://evil.example/"><input name=password></form>`, []string{"<form", "<input name"}},
	{"style tag", `<style>body{display:none}</style>`, []string{"<style", "display:none"}},
	{"style attribute", `<p style="position:fixed;top:0;left:0;width:100%;height:100%">x</p>`, []string{"style=", "position:fixed"}},
	{"css expression", `<div style="width: expression(alert(1))">x</div>`, []string{"expression", "style="}},
	{"link stylesheet", `<link rel=stylesheet href="https://evil.example/x.css">`, []string{"<link", "evil.example"}},
	{"meta refresh", `<meta http-equiv="refresh" content="0;url=https://evil.example/">`, []string{"<meta", "refresh"}},
	{"base tag", `<base href="https://evil.example/">`, []string{"<base"}},
	{"id clobbering", `<img id="main" name="getElementById" src="https://ok.example/a.png">`, []string{`id="main"`, "name="}},
	{"formaction button", `<button formaction="javascript:alert(1)">x</button>`, []string{"formaction", "javascript:"}},
	{"template and noscript", `<template><script>alert(1)</script></template><noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>`, []string{"<script", "onerror"}},
	{"unclosed attribute trick", `<a href="https://ok.example/" title="x" onfocus=alert(1) autofocus>x</a>`, []string{"onfocus", "autofocus"}},
	{"html comment trick", `<!--><script>alert(1)</script>-->`, []string{"<script"}},
	{"code fence with script stays text", "```html\n<script>alert(1)</script>\n```", []string{"<script"}},
	{"autolink javascript", `<javascript:alert(1)>`, []string{`href="javascript`}},
	{"srcset javascript", `<img srcset="javascript:alert(1) 1x">`, []string{"javascript:"}},
	{"id outside the user-content namespace", `<h2 id="readme">x</h2><a name="main" id="whoami">y</a>`, []string{`id="readme"`, `id="whoami"`, `name="main"`}},
	{"table cell handler", "| a |\n|---|\n| <b onmouseover=alert(1)>x</b> |", []string{"onmouseover"}},
}

func TestRenderReadmeNeutralizesXSS(t *testing.T) {
	for _, tc := range xssCorpus {
		t.Run(tc.name, func(t *testing.T) {
			out := RenderReadme(tc.in)
			low := strings.ToLower(out)
			for _, f := range tc.forbids {
				if strings.Contains(low, strings.ToLower(f)) {
					t.Errorf("output keeps %q:\n%s", f, out)
				}
			}
		})
	}
}

func TestRenderReadmeKeepsMarkdown(t *testing.T) {
	in := "# Title\n\nSome *text* and a [link](https://example.com/docs).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst x = 1 < 2;\n```\n\n- [x] done\n"
	out := RenderReadme(in)
	for _, want := range []string{"<h1>Title</h1>", "<em>text</em>", `href="https://example.com/docs"`, "<table>", "<td>1</td>",
		`class="language-js"`, "1 &lt; 2", `rel="nofollow noreferrer noopener"`, `target="_blank"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderReadmeBoundsInput(t *testing.T) {
	out := RenderReadme(strings.Repeat("a", maxReadmeBytes+1000))
	if n := strings.Count(out, "a"); n > maxReadmeBytes {
		t.Errorf("rendered %d bytes of input, bound is %d", n, maxReadmeBytes)
	}
}
