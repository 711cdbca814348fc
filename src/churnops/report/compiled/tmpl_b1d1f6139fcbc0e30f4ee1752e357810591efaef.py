from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'ab_report.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_document = resolve('document')
    l_0_version = resolve('version')
    l_0_range = resolve('range')
    l_0_decision = l_0_arms = l_0_status = l_0_said = missing
    try:
        t_1 = environment.filters['format']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'format' found.")
    try:
        t_2 = environment.filters['num']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'num' found.")
    try:
        t_3 = environment.filters['pval']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'pval' found.")
    try:
        t_4 = environment.filters['sum']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'sum' found.")
    try:
        t_5 = environment.filters['upper']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'upper' found.")
    try:
        t_6 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    l_0_decision = environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'decision')
    context.vars['decision'] = l_0_decision
    context.exported_vars.add('decision')
    l_0_arms = environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'arms')
    context.vars['arms'] = l_0_arms
    context.exported_vars.add('arms')
    l_0_status = ('ok' if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote') else 'warning')
    context.vars['status'] = l_0_status
    context.exported_vars.add('status')
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="generator" content="churnops '
    yield escape(environment.finalize((undefined(name='version') if l_0_version is missing else l_0_version)))
    yield '">\n<title>'
    yield escape(environment.finalize(('Challenger better' if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote') else 'Champion stays')))
    yield ' · churnops A/B report · '
    yield escape(environment.finalize(environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'model')))
    yield '</title>\n<link rel="stylesheet" href="report.css">\n</head>\n<body>\n<header class="banner banner-'
    yield escape(environment.finalize((undefined(name='status') if l_0_status is missing else l_0_status)))
    yield '" id="top">\n  <div class="wrap">\n    <p class="eyebrow">churnops A/B report · '
    yield escape(environment.finalize(environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'model')))
    yield ' · '
    yield escape(environment.finalize(environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'created_at')))
    yield '</p>\n    <h1><span class="verdict-icon" aria-hidden="true">'
    yield escape(environment.finalize(('✓' if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote') else '!')))
    yield '</span>\n'
    if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote'):
        pass
        yield 'The challenger is better'
    elif ('challenger' not in (undefined(name='arms') if l_0_arms is missing else l_0_arms)):
        pass
        yield 'No challenger'
    else:
        pass
        yield 'The champion stays'
    yield '    </h1>\n'
    l_0_said = (environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'figures') or environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'reason'))
    context.vars['said'] = l_0_said
    context.exported_vars.add('said')
    yield '    <p class="lede">'
    yield escape(environment.finalize(t_5((undefined(name='said') if l_0_said is missing else l_0_said)[:1])))
    yield escape(environment.finalize((undefined(name='said') if l_0_said is missing else l_0_said)[1:]))
    yield '.</p>\n    <ul class="kpis">\n'
    for (l_1_name, l_1_arm) in context.call(environment.getattr((undefined(name='arms') if l_0_arms is missing else l_0_arms), 'items')):
        _loop_vars = {}
        pass
        yield '      <li class="kpi"><span class="kpi-label">'
        yield escape(environment.finalize(l_1_name))
        yield ' · '
        yield escape(environment.finalize(environment.getattr(l_1_arm, 'alias')))
        yield ' · v'
        yield escape(environment.finalize(environment.getattr(l_1_arm, 'version')))
        yield '</span><span class="kpi-value">'
        yield escape(environment.finalize(('-' if t_6(environment.getattr(l_1_arm, 'roc_auc')) else t_1('%.4f', environment.getattr(l_1_arm, 'roc_auc')))))
        yield '</span><span class="kpi-note">ROC-AUC · '
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'labelled'), _loop_vars=_loop_vars)))
        yield ' labelled of '
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'scored'), _loop_vars=_loop_vars)))
        yield ' scored</span></li>\n'
    l_1_name = l_1_arm = missing
    if (not t_6(environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'p_value'))):
        pass
        yield '      <li class="kpi '
        yield escape(environment.finalize(('kpi-good' if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote') else '')))
        yield '"><span class="kpi-label">Difference</span><span class="kpi-value">'
        yield escape(environment.finalize(t_1('%+.4f', environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'difference'))))
        yield '</span><span class="kpi-note">one-sided p '
        yield escape(environment.finalize(t_3(environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'p_value'))))
        yield ' · level '
        yield escape(environment.finalize(t_2(environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'level'))))
        yield '</span></li>\n'
    yield '    </ul>\n  </div>\n</header>\n<main class="wrap">\n<section id="arms">\n  <h2>Arms</h2>\n  <p class="hint">Each arm is measured on the events its current model version scored through <code>POST /v1/predict</code>, with the outcomes sent to <code>POST /v1/labels</code>'
    if (environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'unit') == 'customer'):
        pass
        yield '; each customer counts once, on their latest labelled event, and events without a customer are left out'
    yield '. '
    yield escape(environment.finalize(environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'test')))
    yield '; a promotion needs '
    yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'min_labels'))))
    yield ' labelled '
    yield escape(environment.finalize(('customers' if (environment.getattr((undefined(name='document') if l_0_document is missing else l_0_document), 'unit') == 'customer') else 'events')))
    yield ' in each arm.</p>\n  <div class="table-scroll">\n  <table class="compact">\n    <thead><tr><th scope="col">arm</th><th scope="col">alias</th><th scope="col">version</th><th scope="col" class="num">scored</th><th scope="col" class="num">customers</th><th scope="col" class="num">labelled</th><th scope="col" class="num">churned</th><th scope="col" class="num">ROC-AUC</th><th scope="col" class="num">Brier</th><th scope="col" class="num">log-loss</th><th scope="col" class="num">mean score</th></tr></thead>\n    <tbody>\n'
    for (l_1_name, l_1_arm) in context.call(environment.getattr((undefined(name='arms') if l_0_arms is missing else l_0_arms), 'items')):
        _loop_vars = {}
        pass
        yield '      <tr><th scope="row">'
        yield escape(environment.finalize(l_1_name))
        yield '</th><td>'
        yield escape(environment.finalize(environment.getattr(l_1_arm, 'alias')))
        yield '</td><td>v'
        yield escape(environment.finalize(environment.getattr(l_1_arm, 'version')))
        yield '</td><td class="num">'
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'scored'), _loop_vars=_loop_vars)))
        yield '</td><td class="num">'
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'customers'), _loop_vars=_loop_vars)))
        yield '</td><td class="num">'
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'labelled'), _loop_vars=_loop_vars)))
        yield '</td><td class="num">'
        yield escape(environment.finalize(context.call(environment.getattr('{:,}', 'format'), environment.getattr(l_1_arm, 'positives'), _loop_vars=_loop_vars)))
        yield '</td><td class="num">'
        yield escape(environment.finalize(('-' if t_6(environment.getattr(l_1_arm, 'roc_auc')) else t_1('%.4f', environment.getattr(l_1_arm, 'roc_auc')))))
        yield '</td><td class="num">'
        yield escape(environment.finalize(('-' if t_6(environment.getattr(l_1_arm, 'brier')) else t_1('%.4f', environment.getattr(l_1_arm, 'brier')))))
        yield '</td><td class="num">'
        yield escape(environment.finalize(('-' if t_6(environment.getattr(l_1_arm, 'log_loss')) else t_1('%.4f', environment.getattr(l_1_arm, 'log_loss')))))
        yield '</td><td class="num">'
        yield escape(environment.finalize(('-' if t_6(environment.getattr(environment.getattr(l_1_arm, 'score'), 'mean')) else t_1('%.4f', environment.getattr(environment.getattr(l_1_arm, 'score'), 'mean')))))
        yield '</td></tr>\n'
    l_1_name = l_1_arm = missing
    yield '    </tbody>\n  </table>\n  </div>\n</section>\n<section id="scores">\n  <h2>Score distribution</h2>\n  <p class="hint">How each arm\'s predicted churn probabilities are spread: quantiles, and the share of scores in each tenth of [0, 1].</p>\n  <div class="table-scroll">\n  <table class="compact">\n    <thead><tr><th scope="col">arm</th>'
    for l_1_point in ('p05', 'p25', 'p50', 'p75', 'p95'):
        _loop_vars = {}
        pass
        yield '<th scope="col" class="num">'
        yield escape(environment.finalize(l_1_point))
        yield '</th>'
    l_1_point = missing
    for l_1_bin in context.call((undefined(name='range') if l_0_range is missing else l_0_range), 10):
        _loop_vars = {}
        pass
        yield '<th scope="col" class="num">'
        yield escape(environment.finalize(t_1('%.1f', (l_1_bin / 10))))
        yield '–'
        yield escape(environment.finalize(t_1('%.1f', ((l_1_bin + 1) / 10))))
        yield '</th>'
    l_1_bin = missing
    yield '</tr></thead>\n    <tbody>\n'
    for (l_1_name, l_1_arm) in context.call(environment.getattr((undefined(name='arms') if l_0_arms is missing else l_0_arms), 'items')):
        l_1_total = missing
        _loop_vars = {}
        pass
        l_1_total = t_4(environment, environment.getattr(environment.getattr(l_1_arm, 'score'), 'histogram'))
        _loop_vars['total'] = l_1_total
        yield '      <tr><th scope="row">'
        yield escape(environment.finalize(l_1_name))
        yield '</th>'
        for l_2_point in ('p05', 'p25', 'p50', 'p75', 'p95'):
            _loop_vars = {}
            pass
            yield '<td class="num">'
            yield escape(environment.finalize(('-' if (l_2_point not in environment.getattr(environment.getattr(l_1_arm, 'score'), 'quantiles')) else t_1('%.3f', environment.getitem(environment.getattr(environment.getattr(l_1_arm, 'score'), 'quantiles'), l_2_point)))))
            yield '</td>'
        l_2_point = missing
        for l_2_count in environment.getattr(environment.getattr(l_1_arm, 'score'), 'histogram'):
            _loop_vars = {}
            pass
            yield '<td class="num">'
            yield escape(environment.finalize(('-' if ((undefined(name='total') if l_1_total is missing else l_1_total) == 0) else t_1('%.1f%%', ((100 * l_2_count) / (undefined(name='total') if l_1_total is missing else l_1_total))))))
            yield '</td>'
        l_2_count = missing
        yield '</tr>\n'
    l_1_name = l_1_arm = l_1_total = missing
    yield '    </tbody>\n  </table>\n  </div>\n</section>\n<section id="next">\n  <h2>What next</h2>\n  <p>'
    if environment.getattr((undefined(name='decision') if l_0_decision is missing else l_0_decision), 'promote'):
        pass
        yield '<code>churnops ab promote</code> makes the challenger the champion (the current champion keeps the alias <code>previous-champion</code>, and the reason is written on the promoted version in the registry); <code>serve.ab.auto_promote = true</code> lets the service do it after a closed window.'
    else:
        pass
        yield 'Keep sending outcomes to <code>POST /v1/labels</code>; <code>churnops ab report</code> measures again.'
    yield '</p>\n</section>\n</main>\n</body>\n</html>'

blocks = {}
debug_info = '1=51&2=54&3=57&9=61&10=63&14=67&16=69&17=73&18=75&20=85&21=89&23=92&24=96&26=109&27=112&35=121&40=131&41=135&52=159&54=176&55=180&56=183&64=202'