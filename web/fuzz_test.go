package web

import (
	"regexp"
	"strings"
	"testing"

	nethtml "golang.org/x/net/html"
)

// FuzzRenderReadme feeds arbitrary markdown and HTML through the README
// pipeline and parses the output as a browser would: no element may be
// script, style, iframe, object, embed, form, svg, math, base, link or
// meta; no attribute may be an event handler, style or srcdoc; no URL may
// carry a scheme other than http, https or mailto; ids must be in the
// README's own namespace.
func FuzzRenderReadme(f *testing.F) {
	for _, c := range xssCorpus {
		f.Add(c.in)
	}
	f.Add("# title\n\n[a](https://example.com) ![b](https://example.com/x.png)\n\n| a |\n|---|\n| b |\n")
	badTags := map[string]bool{"script": true, "style": true, "iframe": true, "object": true, "embed": true, "form": true,
		"svg": true, "math": true, "base": true, "link": true, "meta": true, "input": true, "button": true, "textarea": true, "template": true}
	scheme := regexp.MustCompile(`^\s*([a-zA-Z][a-zA-Z0-9+.-]*):`)
	f.Fuzz(func(t *testing.T, src string) {
		out := RenderReadme(src)
		z := nethtml.NewTokenizer(strings.NewReader(out))
		for {
			tt := z.Next()
			if tt == nethtml.ErrorToken {
				return
			}
			if tt != nethtml.StartTagToken && tt != nethtml.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			if badTags[tok.Data] {
				t.Fatalf("<%s> survived in %q from %q", tok.Data, out, src)
			}
			for _, a := range tok.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(k, "on"), k == "style", k == "srcdoc", k == "formaction":
					t.Fatalf("attribute %s survived in %q", k, out)
				case k == "href" || k == "src" || k == "cite" || k == "srcset" || k == "action":
					if m := scheme.FindStringSubmatch(a.Val); m != nil {
						switch strings.ToLower(m[1]) {
						case "http", "https", "mailto":
						default:
							t.Fatalf("%s=%q survived in %q", k, a.Val, out)
						}
					}
				case k == "id" && !strings.HasPrefix(a.Val, idPrefix):
					t.Fatalf("id %q outside the README namespace in %q", a.Val, out)
				}
			}
		}
	})
}
