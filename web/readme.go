package web

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	nethtml "golang.org/x/net/html"
)

// maxReadmeBytes bounds the markdown rendered for one page: publishes cut
// the readme to 64 KiB (registry.MaxReadme), mirrored packuments may carry
// longer ones, and a markdown parser's time grows with its input.
const maxReadmeBytes = 256 << 10

// markdown renders READMEs with GitHub's extensions (tables, task lists,
// strikethrough, autolinks). Raw HTML is kept (many READMEs centre a logo
// with it) and everything goes through readmePolicy afterwards: the
// sanitizer, not the renderer, is the security boundary.
var markdown = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithRendererOptions(gmhtml.WithUnsafe()),
)

// readmePolicy is bluemonday's user-generated-content policy: no script,
// style, iframe, object, svg, form or event handler; links and images only
// with http(s), mailto or relative URLs; no style or id attributes (CSS
// tricks), ids only as user-content-* (DOM clobbering). Links get rel="nofollow noreferrer" and, when
// they leave the site, open in a new tab.
var readmePolicy = func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^language-[A-Za-z0-9_+-]{1,40}$`)).OnElements("code")
	p.RequireNoFollowOnLinks(true)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.AllowURLSchemes("http", "https", "mailto")
	return p
}()

// RenderReadme turns a package's markdown README into sanitized HTML.
func RenderReadme(src string) string {
	if len(src) > maxReadmeBytes {
		src = src[:maxReadmeBytes]
	}
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(src), &buf); err != nil {
		// Never fall back to the raw text as HTML: show it escaped.
		return readmePolicy.Sanitize("<pre>" + html.EscapeString(src) + "</pre>")
	}
	return namespaceIDs(readmePolicy.SanitizeReader(&buf).String())
}

// idPrefix puts a README's ids (and map names) in a namespace of their
// own, as code hosts do, so that a README cannot clobber the page's own
// elements or document properties (DOM clobbering): bluemonday's policy
// allows id on every element and offers no way to take it back.
const idPrefix = "user-content-"

// namespaceIDs rewrites the id and map name attributes of sanitized HTML;
// everything else is copied byte for byte.
func namespaceIDs(s string) string {
	if !strings.Contains(s, "id=") && !strings.Contains(s, "name=") {
		return s
	}
	var out strings.Builder
	z := nethtml.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == nethtml.ErrorToken {
			return out.String()
		}
		raw := z.Raw()
		if tt != nethtml.StartTagToken && tt != nethtml.SelfClosingTagToken {
			out.Write(raw)
			continue
		}
		tok := z.Token()
		changed := false
		for i, a := range tok.Attr {
			if a.Key == "id" || (a.Key == "name" && tok.Data == "map") {
				tok.Attr[i].Val = idPrefix + a.Val
				changed = true
			}
		}
		if changed {
			out.WriteString(tok.String())
		} else {
			out.Write(raw)
		}
	}
}

// fragmentCache keeps rendered package fragments per revision, bounded.
type fragmentCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*fragments
}

func newFragmentCache(max int) *fragmentCache {
	return &fragmentCache{max: max, m: map[string]*fragments{}}
}

func (c *fragmentCache) get(key string) (*fragments, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f, ok := c.m[key]
	return f, ok
}

func (c *fragmentCache) put(key string, f *fragments) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Crude but bounded: start over rather than track recency.
		c.m = make(map[string]*fragments, c.max)
	}
	c.m[key] = f
}
