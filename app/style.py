"""The chat's CSS: the classes written by ``app.render``, on the theme's variables (light and dark)."""

CSS = """
.qa-header { display: flex; align-items: baseline; gap: .75rem; flex-wrap: wrap; padding: .25rem 0 .5rem; }
.qa-brand { font-size: 1.35rem; font-weight: 700; letter-spacing: -.01em; }
.qa-tagline { color: var(--body-text-color-subdued); }
.qa-side-h { font-weight: 600; margin-top: .5rem; }
.qa-note { color: var(--body-text-color-subdued); font-size: .9em; margin: .15rem 0 .35rem; }
.qa-filter-note { color: var(--color-accent); }
.qa-placeholder { text-align: center; line-height: 1.6; color: var(--body-text-color-subdued); }

.qa-user { white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-reply { line-height: 1.5; }
.qa-quote { overflow-wrap: anywhere;
  margin: .2rem 0 .6rem; padding: .5rem .75rem; border-left: 4px solid var(--color-accent);
  background: var(--background-fill-secondary); border-radius: 6px; white-space: pre-wrap;
  font-size: 1.02em; }
mark.qa-span { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 3px; font-weight: 600; }
.dark mark.qa-span { background: #b45309; color: #fff; }
.qa-cursor { opacity: .6; }
.qa-cite { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .45rem .65rem;
  background: var(--background-fill-primary); }
.qa-cite-title { font-weight: 600; overflow-wrap: anywhere; }
.qa-cite-meta { color: var(--body-text-color-subdued); font-size: .9em; }
.qa-cite-path { color: var(--body-text-color-subdued); font-size: .8em; font-family: var(--font-mono);
  word-break: break-all; }
.qa-link { color: var(--link-text-color); text-decoration: underline; }
.qa-foot { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; margin-top: .45rem;
  font-size: .88em; }
.qa-conf { padding: .05rem .5rem; border-radius: 999px; font-weight: 600; }
.qa-conf-high { background: #dcfce7; color: #166534; }
.qa-conf-medium { background: #fef9c3; color: #854d0e; }
.qa-conf-low { background: #fee2e2; color: #991b1b; }
.qa-hint { color: var(--body-text-color-subdued); }
.qa-declined-msg { font-weight: 600; margin: 0 0 .3rem; }
.qa-closest { margin: 0; padding-left: 1.1rem; }
.qa-pending { color: var(--body-text-color-subdued); font-style: italic; }
.qa-error { color: #b91c1c; }
#qa-chat .bot-row .message { cursor: pointer; }

.qa-sources, .qa-library { display: flex; flex-direction: column; gap: .6rem; padding: .25rem; }
.qa-sources-h { font-weight: 600; }
.qa-empty { color: var(--body-text-color-subdued); padding: 1rem .5rem; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5rem .65rem; }
.qa-source-answer { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent) inset; }
.qa-source-head { display: flex; gap: .5rem; align-items: baseline; }
.qa-rank { color: var(--body-text-color-subdued); font-variant-numeric: tabular-nums; }
.qa-badge { margin-left: auto; background: var(--color-accent); color: white; border-radius: 999px;
  padding: 0 .45rem;
  font-size: .75em; }
.qa-source-text { white-space: pre-wrap; font-size: .92em; margin: .35rem 0; max-height: 14rem;
  overflow: auto; }
.qa-source-answer .qa-source-text { max-height: none; }
.qa-term { text-decoration: underline; text-decoration-color: var(--color-accent);
  text-decoration-thickness: 2px; }
button.qa-open { color: var(--link-text-color); background: none !important; border: none; box-shadow: none;
  padding: 0; cursor: pointer;
  text-decoration: underline; font-size: .9em; text-align: left; }
.qa-lib { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .45rem; }
.qa-lib-item { border-bottom: 1px solid var(--border-color-primary); padding-bottom: .35rem; }
button.qa-lib-open { font-size: .95em; font-weight: 600; text-decoration: none; }
button.qa-lib-open:hover { text-decoration: underline; }

.qa-release { display: flex; flex-direction: column; gap: .5rem; }
.qa-release-head { padding: .25rem; border-bottom: 1px solid var(--border-color-primary); }
.qa-release-title { font-weight: 700; font-size: 1.05em; overflow-wrap: anywhere; }
.qa-release-text { position: relative; overflow-wrap: anywhere;
  white-space: pre-wrap; overflow-y: auto; max-height: 62vh;
  padding: .25rem .5rem; line-height: 1.55; }
.qa-region { background: #dbeafe; border-radius: 3px; }
.dark .qa-region { background: rgba(59, 130, 246, .3); }

.qa-upload-report { overflow-wrap: anywhere; }
.qa-upload-report ul { margin: .2rem 0 .4rem; padding-left: 1.1rem; font-size: .9em; }
.qa-ok { color: #15803d; font-weight: 600; }
.qa-bad { color: #b91c1c; font-weight: 600; }
"""
