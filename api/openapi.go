package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/domain"
)

//go:embed openapi.yaml
var openapiYAML []byte

//go:embed docs.html.tmpl
var docsTemplateText string

// servedDoc is the document as served: openapi.yaml with its generated
// sections rendered from the task registry, as YAML, JSON and the docs
// page. It is rendered again when the registry changes (a task type
// registered at run time, by an extension or a test).
type servedDoc struct {
	gen              uint64
	yaml, json, html []byte
}

var served struct {
	sync.Mutex
	doc *servedDoc
}

func init() {
	// The embedded document and its generated sections are part of the
	// build: a broken one is a programming error every test sees.
	d, err := renderServedDoc()
	if err != nil {
		panic("api: embedded openapi.yaml: " + err.Error())
	}
	served.doc = d
}

func renderServedDoc() (*servedDoc, error) {
	gen := domain.CatalogGeneration()
	y, err := RenderTaskSections(openapiYAML)
	if err != nil {
		return nil, err
	}
	j, err := yamlToJSON(y)
	if err != nil {
		return nil, err
	}
	h, err := renderDocs(j)
	if err != nil {
		return nil, fmt.Errorf("docs page: %w", err)
	}
	return &servedDoc{gen: gen, yaml: y, json: j, html: h}, nil
}

// currentDoc returns the document for the registry as it is now. Should a
// re-rendering fail (it cannot for a registration that passed
// domain.RegisterTask), the last good one is served.
func currentDoc() *servedDoc {
	served.Lock()
	defer served.Unlock()
	if served.doc != nil && served.doc.gen == domain.CatalogGeneration() {
		return served.doc
	}
	if d, err := renderServedDoc(); err == nil {
		served.doc = d
	}
	return served.doc
}

// OpenAPIYAML returns the OpenAPI 3 document of the gateway as YAML, its
// task sections rendered from the task registry.
func OpenAPIYAML() []byte { return slices.Clone(currentDoc().yaml) }

// OpenAPIJSON returns the OpenAPI 3 document of the gateway as JSON.
func OpenAPIJSON() []byte { return slices.Clone(currentDoc().json) }

func serveOpenAPIYAML(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", currentDoc().yaml)
}

func serveOpenAPIJSON(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", currentDoc().json)
}

func serveDocs(c *gin.Context) {
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	c.Data(http.StatusOK, "text/html; charset=utf-8", currentDoc().html)
}

// yamlToJSON converts a YAML document (anchors resolved) into JSON.
func yamlToJSON(in []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(in, &v); err != nil {
		return nil, err
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			n, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = n
		}
		return m, nil
	case []any:
		for i, e := range t {
			n, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	}
	return v, nil
}

// The docs page is rendered once, on the server, from the document itself:
// no script, no network, readable with any browser (or curl).

type docPage struct {
	Title, Version, Description string
	Tags                        []docTag
	Schemas                     []docSchema
	YAMLPath, JSONPath          string
}

type docTag struct {
	Name, Description string
	Ops               []docOp
}

type docOp struct {
	Anchor, Method, Path, Short, Summary, Description string
	// Scope is the operation's x-required-scope ("" for the unauthenticated
	// probes and documents).
	Scope        string
	Params       []docField
	Bodies       []docMedia
	BodyRequired bool
	Responses    []docResponse
}

type docMedia struct {
	ContentType string
	Schema      template.HTML
	Example     string
}

type docResponse struct {
	Code, Description string
	Media             []docMedia
}

type docField struct {
	Name, In, Description, Constraints string
	Type                               template.HTML
	Required                           bool
}

type docSchema struct {
	Name, Description string
	Type              template.HTML
	Fields            []docField
	Enum              []string
}

type obj = map[string]any

func get(m obj, keys ...string) obj {
	for _, k := range keys {
		next, _ := m[k].(obj)
		if next == nil {
			return nil
		}
		m = next
	}
	return m
}

func str(m obj, k string) string {
	s, _ := m[k].(string)
	return s
}

// resolve follows a local $ref ("#/components/...") once.
func resolve(root, m obj) obj {
	ref := str(m, "$ref")
	if ref == "" {
		return m
	}
	path := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	if r := get(root, path...); r != nil {
		return r
	}
	return m
}

func refName(m obj) string {
	ref := str(m, "$ref")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

// schemaType renders a short type description with links to named schemas.
func schemaType(root, s obj) template.HTML {
	if s == nil {
		return "any"
	}
	if name := refName(s); name != "" {
		return template.HTML(fmt.Sprintf(`<a href="#schema-%s">%s</a>`, template.HTMLEscapeString(name), template.HTMLEscapeString(name)))
	}
	if all, ok := s["allOf"].([]any); ok {
		parts := make([]string, 0, len(all))
		for _, a := range all {
			if am, ok := a.(obj); ok {
				if refName(am) != "" {
					parts = append(parts, string(schemaType(root, am)))
				} else if req, ok := am["required"].([]any); ok {
					parts = append(parts, "required: "+template.HTMLEscapeString(joinAny(req)))
				}
			}
		}
		return template.HTML(strings.Join(parts, " + "))
	}
	t := str(s, "type")
	switch t {
	case "array":
		items, _ := s["items"].(obj)
		return "array of " + schemaType(root, items)
	case "object":
		if ap, ok := s["additionalProperties"].(obj); ok {
			return "object of " + schemaType(root, ap)
		}
	case "":
		t = "any"
	}
	if f := str(s, "format"); f != "" {
		t += " (" + f + ")"
	}
	return template.HTML(template.HTMLEscapeString(t))
}

func constraints(s obj) string {
	var parts []string
	add := func(label, key string) {
		if v, ok := s[key]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", label, v))
		}
	}
	add("min", "minimum")
	add("max", "maximum")
	add("min length", "minLength")
	add("max length", "maxLength")
	add("min items", "minItems")
	add("max items", "maxItems")
	add("pattern", "pattern")
	add("default", "default")
	if e, ok := s["enum"].([]any); ok {
		parts = append(parts, "one of: "+joinAny(e))
	}
	if b, _ := s["readOnly"].(bool); b {
		parts = append(parts, "read-only")
	}
	return strings.Join(parts, "; ")
}

func joinAny(xs []any) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprint(x)
		if out[i] == "" {
			out[i] = `""`
		}
	}
	return strings.Join(out, ", ")
}

func media(root, content obj) []docMedia {
	var out []docMedia
	for _, ct := range sortedKeys(content) {
		mt, _ := content[ct].(obj)
		dm := docMedia{ContentType: ct}
		if sch, ok := mt["schema"].(obj); ok {
			dm.Schema = schemaType(root, sch)
		}
		if ex, ok := mt["example"]; ok {
			b, _ := json.MarshalIndent(ex, "", "  ")
			dm.Example = string(b)
		}
		out = append(out, dm)
	}
	return out
}

func sortedKeys(m obj) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var methodOrder = []string{"get", "post", "put", "patch", "delete"}

func renderDocs(docJSON []byte) ([]byte, error) {
	var root obj
	if err := json.Unmarshal(docJSON, &root); err != nil {
		return nil, err
	}
	page := docPage{
		Title:       str(get(root, "info"), "title"),
		Version:     str(get(root, "info"), "version"),
		Description: str(get(root, "info"), "description"),
		YAMLPath:    OpenAPIYAMLPath,
		JSONPath:    OpenAPIJSONPath,
	}
	tagIndex := map[string]int{}
	if tags, ok := root["tags"].([]any); ok {
		for _, t := range tags {
			tm, _ := t.(obj)
			tagIndex[str(tm, "name")] = len(page.Tags)
			page.Tags = append(page.Tags, docTag{Name: str(tm, "name"), Description: str(tm, "description")})
		}
	}
	paths := get(root, "paths")
	// Keep the document's reading order: system first, then by path.
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(obj)
		var shared []any
		if ps, ok := item["parameters"].([]any); ok {
			shared = ps
		}
		for _, method := range methodOrder {
			op, _ := item[method].(obj)
			if op == nil {
				continue
			}
			d := docOp{Method: strings.ToUpper(method), Path: p, Short: strings.TrimPrefix(p, BasePath),
				Summary: str(op, "summary"), Description: str(op, "description"), Scope: str(op, "x-required-scope")}
			if d.Short == "" {
				d.Short = p
			}
			d.Anchor = "op-" + str(op, "operationId")
			params := append(slices.Clone(shared), anySlice(op["parameters"])...)
			for _, pa := range params {
				pm, _ := pa.(obj)
				pm = resolve(root, pm)
				sch, _ := pm["schema"].(obj)
				req, _ := pm["required"].(bool)
				d.Params = append(d.Params, docField{Name: str(pm, "name"), In: str(pm, "in"), Required: req,
					Description: str(pm, "description"), Type: schemaType(root, sch), Constraints: constraints(resolve(root, sch))})
			}
			if rb := get(op, "requestBody"); rb != nil {
				d.BodyRequired, _ = rb["required"].(bool)
				d.Bodies = media(root, get(rb, "content"))
			}
			resps := get(op, "responses")
			for _, code := range sortedKeys(resps) {
				rm, _ := resps[code].(obj)
				rm = resolve(root, rm)
				d.Responses = append(d.Responses, docResponse{Code: code, Description: str(rm, "description"), Media: media(root, get(rm, "content"))})
			}
			tag := "other"
			if ts := anySlice(op["tags"]); len(ts) > 0 {
				tag, _ = ts[0].(string)
			}
			i, ok := tagIndex[tag]
			if !ok {
				i = len(page.Tags)
				tagIndex[tag] = i
				page.Tags = append(page.Tags, docTag{Name: tag})
			}
			page.Tags[i].Ops = append(page.Tags[i].Ops, d)
		}
	}
	schemas := get(root, "components", "schemas")
	for _, name := range sortedKeys(schemas) {
		s, _ := schemas[name].(obj)
		ds := docSchema{Name: name, Description: str(s, "description"), Type: schemaType(root, s)}
		if e, ok := s["enum"].([]any); ok {
			for _, v := range e {
				ds.Enum = append(ds.Enum, fmt.Sprint(v))
			}
		}
		required := map[string]bool{}
		for _, r := range anySlice(s["required"]) {
			if rs, ok := r.(string); ok {
				required[rs] = true
			}
		}
		props := get(s, "properties")
		for _, pn := range sortedKeys(props) {
			pm, _ := props[pn].(obj)
			ds.Fields = append(ds.Fields, docField{Name: pn, Required: required[pn], Type: schemaType(root, pm),
				Description: str(pm, "description"), Constraints: constraints(pm)})
		}
		page.Schemas = append(page.Schemas, ds)
	}
	tmpl, err := template.New("docs").Parse(docsTemplateText)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, page); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}
