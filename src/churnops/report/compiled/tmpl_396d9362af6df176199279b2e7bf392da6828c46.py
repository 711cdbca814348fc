from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'report.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_result = resolve('result')
    l_0_version = resolve('version')
    l_0_context = resolve('context')
    l_0_apart = resolve('apart')
    l_0_gauge = resolve('gauge')
    l_0_basis = resolve('basis')
    l_0_observed = resolve('observed')
    l_0_segment_matrix = resolve('segment_matrix')
    l_0_trend_charts = resolve('trend_charts')
    l_0_kinds = resolve('kinds')
    l_0_columns = resolve('columns')
    l_0_mv = resolve('mv')
    l_0_dc = resolve('dc')
    l_0_pc = resolve('pc')
    l_0_m = resolve('m')
    l_0_ch = resolve('ch')
    l_0_chunk_chart = resolve('chunk_chart')
    l_0_rate_chart = resolve('rate_chart')
    l_0_p = resolve('p')
    l_0_decay = resolve('decay')
    l_0_drop = resolve('drop')
    l_0_max_charts = resolve('max_charts')
    l_0_errors = resolve('errors')
    l_0_warnings = resolve('warnings')
    l_0_quality_share = resolve('quality_share')
    l_0_share = resolve('share')
    l_0_svg = l_0_fluid_svg = l_0_strong_names = l_0_drift = l_0_quality = l_0_target = l_0_verdict = l_0_status = l_0_model = missing
    try:
        t_1 = environment.filters['abs']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'abs' found.")
    try:
        t_2 = environment.filters['breakable']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'breakable' found.")
    try:
        t_3 = environment.filters['chance']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'chance' found.")
    try:
        t_4 = environment.filters['fixed4']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'fixed4' found.")
    try:
        t_5 = environment.filters['format']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'format' found.")
    try:
        t_6 = environment.filters['join']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No filter named 'join' found.")
    try:
        t_7 = environment.filters['length']
    except KeyError:
        @internalcode
        def t_7(*unused):
            raise TemplateRuntimeError("No filter named 'length' found.")
    try:
        t_8 = environment.filters['list']
    except KeyError:
        @internalcode
        def t_8(*unused):
            raise TemplateRuntimeError("No filter named 'list' found.")
    try:
        t_9 = environment.filters['map']
    except KeyError:
        @internalcode
        def t_9(*unused):
            raise TemplateRuntimeError("No filter named 'map' found.")
    try:
        t_10 = environment.filters['num']
    except KeyError:
        @internalcode
        def t_10(*unused):
            raise TemplateRuntimeError("No filter named 'num' found.")
    try:
        t_11 = environment.filters['pct']
    except KeyError:
        @internalcode
        def t_11(*unused):
            raise TemplateRuntimeError("No filter named 'pct' found.")
    try:
        t_12 = environment.filters['pval']
    except KeyError:
        @internalcode
        def t_12(*unused):
            raise TemplateRuntimeError("No filter named 'pval' found.")
    try:
        t_13 = environment.filters['replace']
    except KeyError:
        @internalcode
        def t_13(*unused):
            raise TemplateRuntimeError("No filter named 'replace' found.")
    try:
        t_14 = environment.filters['share1']
    except KeyError:
        @internalcode
        def t_14(*unused):
            raise TemplateRuntimeError("No filter named 'share1' found.")
    try:
        t_15 = environment.filters['sum']
    except KeyError:
        @internalcode
        def t_15(*unused):
            raise TemplateRuntimeError("No filter named 'sum' found.")
    try:
        t_16 = environment.filters['upper']
    except KeyError:
        @internalcode
        def t_16(*unused):
            raise TemplateRuntimeError("No filter named 'upper' found.")
    try:
        t_17 = environment.filters['value']
    except KeyError:
        @internalcode
        def t_17(*unused):
            raise TemplateRuntimeError("No filter named 'value' found.")
    try:
        t_18 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_18(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    included_template = environment.get_template('_svg.html.j2', 'report.html.j2')._get_default_module(context)
    l_0_svg = getattr(included_template, 'svg', missing)
    if l_0_svg is missing:
        l_0_svg = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'report.html.j2') does not export the requested name 'svg'", name='svg')
    l_0_fluid_svg = getattr(included_template, 'fluid_svg', missing)
    if l_0_fluid_svg is missing:
        l_0_fluid_svg = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'report.html.j2') does not export the requested name 'fluid_svg'", name='fluid_svg')
    context.vars.update({'svg': l_0_svg, 'fluid_svg': l_0_fluid_svg})
    context.exported_vars.difference_update(('svg', 'fluid_svg'))
    def macro(l_1_names):
        t_19 = []
        if l_1_names is missing:
            l_1_names = undefined("parameter 'names' was not provided", name='names')
        pass
        l_2_loop = missing
        for l_2_name, l_2_loop in LoopContext(l_1_names, undefined):
            _loop_vars = {}
            pass
            t_19.extend((
                '<strong>',
                escape(environment.finalize(t_2(l_2_name))),
                '</strong>',
                escape(environment.finalize((', ' if (not environment.getattr(l_2_loop, 'last')) else cond_expr_undefined("the inline if-expression on line 2 in 'report.html.j2' evaluated to false and no else section was defined.")))),
            ))
        l_2_loop = l_2_name = missing
        return concat(t_19)
    context.exported_vars.add('strong_names')
    context.vars['strong_names'] = l_0_strong_names = Macro(environment, macro, 'strong_names', ('names',), False, False, False, context.eval_ctx.autoescape)
    l_0_drift = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'dataset_drift')
    context.vars['drift'] = l_0_drift
    context.exported_vars.add('drift')
    l_0_quality = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'data_quality')
    context.vars['quality'] = l_0_quality
    context.exported_vars.add('quality')
    l_0_target = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'target_drift')
    context.vars['target'] = l_0_target
    context.exported_vars.add('target')
    l_0_verdict = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'verdict')
    context.vars['verdict'] = l_0_verdict
    context.exported_vars.add('verdict')
    l_0_status = (environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'status') if (undefined(name='verdict') if l_0_verdict is missing else l_0_verdict) else ('alert' if environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'detected') else 'ok'))
    context.vars['status'] = l_0_status
    context.exported_vars.add('status')
    l_0_model = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'model')
    context.vars['model'] = l_0_model
    context.exported_vars.add('model')
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="generator" content="churnops '
    yield escape(environment.finalize((undefined(name='version') if l_0_version is missing else l_0_version)))
    yield '">\n<title>'
    yield escape(environment.finalize(environment.getitem({'alert': 'Alert', 'warning': 'Warning', 'ok': 'No alert'}, (undefined(name='status') if l_0_status is missing else l_0_status))))
    yield ' · churnops report · '
    yield escape(environment.finalize((environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'path') or 'current batch')))
    yield '</title>\n<link rel="stylesheet" href="report.css">\n</head>\n<body>\n<header class="banner banner-'
    yield escape(environment.finalize((undefined(name='status') if l_0_status is missing else l_0_status)))
    yield '" id="top">\n  <div class="wrap">\n    <p class="eyebrow">churnops drift report · run '
    yield escape(environment.finalize(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'run_id')))
    yield ' · '
    yield escape(environment.finalize(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'created_at')))
    yield '</p>\n    <h1><span class="verdict-icon" aria-hidden="true">'
    yield escape(environment.finalize(environment.getitem({'alert': '▲', 'warning': '!', 'ok': '✓'}, (undefined(name='status') if l_0_status is missing else l_0_status))))
    yield '</span>\n'
    if ((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict) and (t_7(environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons')) > 1)):
        pass
        yield escape(environment.finalize(environment.getitem({'alert': 'Alert', 'warning': 'Warning', 'ok': ''}, (undefined(name='status') if l_0_status is missing else l_0_status))))
        yield ': '
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons'))))
        yield ' findings'
    elif (undefined(name='verdict') if l_0_verdict is missing else l_0_verdict):
        pass
        yield escape(environment.finalize(t_16(environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'headline')[:1])))
        yield escape(environment.finalize(environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'headline')[1:]))
    elif environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'detected'):
        pass
        yield 'Data drift detected: '
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'drifted_columns'))))
        yield ' of '
        yield escape(environment.finalize(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'n_columns')))
        yield ' columns drifted'
    else:
        pass
        yield 'No data drift: '
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'drifted_columns'))))
        yield ' of '
        yield escape(environment.finalize(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'n_columns')))
        yield ' columns drifted'
    yield '    </h1>\n'
    if ((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict) and (t_7(environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons')) > 1)):
        pass
        yield '    <ul class="findings">\n'
        for l_1_reason in environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons'):
            _loop_vars = {}
            pass
            yield '<li class="finding finding-'
            yield escape(environment.finalize(environment.getattr(l_1_reason, 'severity')))
            yield '"><span class="badge '
            yield escape(environment.finalize(('badge-drift' if (environment.getattr(l_1_reason, 'severity') == 'alert') else 'badge-warn')))
            yield '">'
            yield escape(environment.finalize(environment.getattr(l_1_reason, 'severity')))
            yield '</span> '
            yield escape(environment.finalize(environment.getattr(l_1_reason, 'message')))
            yield '</li>'
        l_1_reason = missing
        yield '    </ul>\n'
    yield '    <p class="lede">\n'
    if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'trigger_written'):
        pass
        yield '<strong>trigger.txt was written</strong>: in the pipeline (<code>churnops pipeline</code>, the Jenkinsfile) it marks this run UNSTABLE, versions the batch and alerts the team.'
    else:
        pass
        yield 'No trigger was written'
        if ((undefined(name='status') if l_0_status is missing else l_0_status) == 'warning'):
            pass
            yield ': the findings above are warnings (not in <code>thresholds.trigger_on</code>)'
        yield '.'
    yield '      Data drift: '
    yield escape(environment.finalize(t_7(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'drifted_columns'))))
    yield ' of '
    yield escape(environment.finalize(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'n_columns')))
    yield ' columns (score <strong>'
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'score'))))
    yield '</strong>, threshold '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'threshold'))))
    yield ')'
    if environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 0):
        pass
        yield ': '
        yield escape(environment.finalize(context.call((undefined(name='strong_names') if l_0_strong_names is missing else l_0_strong_names), environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 0))))
    if environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 1):
        pass
        yield escape(environment.finalize((';' if environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 0) else ':')))
        yield ' no usable value in the batch (every cell missing or unreadable, counted as drifted): '
        yield escape(environment.finalize(context.call((undefined(name='strong_names') if l_0_strong_names is missing else l_0_strong_names), environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 1))))
    yield '.\n'
    if (environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'verdict') == 'calibrated'):
        pass
        yield ' Calibrated verdict: a column drifts when its adjusted p-value is at most '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'fdr'))))
        yield ' (false discovery rate across columns) and its change is at least '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'min_effect'))))
        yield '; with no drift, this rule raises data drift in at most '
        yield escape(environment.finalize(t_3(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'expected_false_alarm_rate'))))
        yield ' of runs'
        if (not t_18(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'any_finding_false_alarm_rate'))):
            pass
            yield ', and with the chunks and detectors of this run any data finding in at most '
            yield escape(environment.finalize(t_3(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'any_finding_false_alarm_rate'))))
        yield '.'
    yield '    </p>\n    <ul class="kpis">\n      <li class="kpi '
    yield escape(environment.finalize(('kpi-bad' if environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'detected') else 'kpi-good')))
    yield '"><span class="kpi-label">Dataset drift score</span><span class="kpi-value">'
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'score'))))
    yield '</span><span class="kpi-note">threshold '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'threshold'))))
    yield ' · '
    yield escape(environment.finalize(('DRIFT' if environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'detected') else 'OK')))
    yield '</span>'
    yield escape(environment.finalize(context.call((undefined(name='svg') if l_0_svg is missing else l_0_svg), (undefined(name='gauge') if l_0_gauge is missing else l_0_gauge), 'gauge')))
    yield '</li>\n      <li class="kpi '
    yield escape(environment.finalize(('kpi-good' if environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'passed') else 'kpi-bad')))
    yield '"><span class="kpi-label">Data quality</span><span class="kpi-value">'
    yield escape(environment.finalize(t_5('%.4f', environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'score'))))
    yield '</span><span class="kpi-note">threshold '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'threshold'))))
    yield ' · '
    yield escape(environment.finalize(('PASS' if environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'passed') else markup_join(('WARNING: ', environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'failure'), )))))
    yield ' · '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'failed_cells'))))
    yield ' failed cells</span></li>\n'
    if ((undefined(name='target') if l_0_target is missing else l_0_target) and (not t_18(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'reference_rate')))):
        pass
        yield '      <li class="kpi '
        yield escape(environment.finalize(('kpi-bad' if environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'drift_detected') else 'kpi-good')))
        yield '"><span class="kpi-label">'
        yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'column')))
        yield ' rate</span><span class="kpi-value">'
        yield escape(environment.finalize(t_11(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'reference_rate'))))
        yield ' → '
        yield escape(environment.finalize(t_11(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'current_rate'))))
        yield '</span><span class="kpi-note">'
        yield escape(environment.finalize(t_5('%+.1f', (environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'difference') * 100))))
        yield ' points · '
        yield escape(environment.finalize(('DRIFT' if environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'drift_detected') else 'no drift')))
        yield ' (p '
        yield escape(environment.finalize(('' if (environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'p_value') == 0) else '= ')))
        yield escape(environment.finalize(t_12(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'p_value'))))
        yield ')</span></li>\n'
    if ((undefined(name='model') if l_0_model is missing else l_0_model) and environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error')):
        pass
        yield '      <li class="kpi kpi-bad"><span class="kpi-label">Model</span><span class="kpi-value">not checked</span><span class="kpi-note">'
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error')))
        yield '</span></li>\n'
    elif ((undefined(name='model') if l_0_model is missing else l_0_model) and environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay')):
        pass
        l_0_basis = environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'basis')
        context.vars['basis'] = l_0_basis
        context.exported_vars.add('basis')
        l_0_observed = context.call(environment.getattr((environment.getitem((undefined(name='model') if l_0_model is missing else l_0_model), (undefined(name='basis') if l_0_basis is missing else l_0_basis)) or {}), 'get'), 'roc_auc')
        context.vars['observed'] = l_0_observed
        context.exported_vars.add('observed')
        yield '      <li class="kpi '
        yield escape(environment.finalize(('kpi-bad' if environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'detected') else 'kpi-good')))
        yield '"><span class="kpi-label">Model ROC-AUC ('
        yield escape(environment.finalize((undefined(name='basis') if l_0_basis is missing else l_0_basis)))
        yield ')</span><span class="kpi-value">'
        yield escape(environment.finalize(t_10(context.call(environment.getattr((environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'reference') or {}), 'get'), 'roc_auc'))))
        yield ' → '
        yield escape(environment.finalize(t_10((undefined(name='observed') if l_0_observed is missing else l_0_observed))))
        yield '</span><span class="kpi-note">'
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'name')))
        yield ' v'
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'version')))
        yield ' · '
        yield escape(environment.finalize((('DECAY' if ((not t_18(environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'roc_auc_drop'))) and (environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'roc_auc_drop') > environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'max_auc_drop'))) else 'NEAR CHANCE') if environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'detected') else 'no decay')))
        yield ' (alert at a drop of '
        yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'max_auc_drop'))))
        if environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'min_auc'):
            pass
            yield ' or below '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay'), 'min_auc'))))
        yield ')</span></li>\n'
    yield '      <li class="kpi"><span class="kpi-label">Rows</span><span class="kpi-value">'
    yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'rows'))))
    yield '</span><span class="kpi-note">current, against '
    yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'rows'))))
    yield ' reference rows</span></li>\n    </ul>\n    <nav class="toc" aria-label="Sections">\n      <a href="#next">What next</a><a href="#drift">Drift table</a>'
    if (undefined(name='segment_matrix') if l_0_segment_matrix is missing else l_0_segment_matrix):
        pass
        yield '<a href="#segments">Segments</a>'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'chunks'):
        pass
        yield '<a href="#chunks">Over time</a>'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'multivariate'):
        pass
        yield '<a href="#multivariate">Multivariate</a>'
    yield '<a href="#target">Target</a>'
    if ((undefined(name='model') if l_0_model is missing else l_0_model) and (environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay') or environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error'))):
        pass
        yield '<a href="#model">Model</a>'
    yield '<a href="#columns">Columns</a><a href="#quality">Data quality</a>'
    if (undefined(name='trend_charts') if l_0_trend_charts is missing else l_0_trend_charts):
        pass
        yield '<a href="#trends">Trends</a>'
    yield '<a href="#facts">Run facts</a>\n    </nav>\n  </div>\n</header>\n\n<main class="wrap">\n<section id="next">\n  <h2>What next</h2>\n  <ul class="next">\n'
    if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'next_steps'):
        pass
        for l_1_step in environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'next_steps'):
            _loop_vars = {}
            pass
            yield '<li>'
            yield escape(environment.finalize(l_1_step))
            yield '</li>'
        l_1_step = missing
    elif ((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict) and environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons')):
        pass
        l_0_kinds = t_8(context.eval_ctx, t_9(context, environment.getattr((undefined(name='verdict') if l_0_verdict is missing else l_0_verdict), 'reasons'), attribute='kind'))
        context.vars['kinds'] = l_0_kinds
        context.exported_vars.add('kinds')
        if ('model decay' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield "<li>The model's ROC-AUC fell more than allowed: retrain it (<code>churnops retrain</code>, which promotes the challenger only if it does better on the newest labelled rows) and look at the drifted inputs by importance in the Model section.</li>"
        if ('model unchecked' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield '<li>The champion model could not be checked ('
            yield escape(environment.finalize((environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error') if (undefined(name='model') if l_0_model is missing else l_0_model) else '')))
            yield '): train it again with <code>churnops train</code>, or repair the model registry.</li>'
        if ('target' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield '<li>The share of '
            yield escape(environment.finalize((environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'column') if (undefined(name='target') if l_0_target is missing else l_0_target) else 'the target')))
            yield " changed: confirm the change with the business; if it lasts, the model's calibration is off - retrain.</li>"
        if ('data' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield '<li>Review the drifted columns below; the largest shifts are first.</li>'
        if ('columns' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield '<li>Look at the drifted '
            yield escape(environment.finalize(('column' if (t_7(environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 0)) == 1) else 'columns')))
            yield ' below ('
            l_1_loop = missing
            for l_1_name, l_1_loop in LoopContext(environment.getitem((undefined(name='apart') if l_0_apart is missing else l_0_apart), 0), undefined):
                _loop_vars = {}
                pass
                yield escape(environment.finalize(t_2(l_1_name)))
                yield escape(environment.finalize((', ' if (not environment.getattr(l_1_loop, 'last')) else cond_expr_undefined("the inline if-expression on line 68 in 'report.html.j2' evaluated to false and no else section was defined."))))
            l_1_loop = l_1_name = missing
            yield '): too few columns drifted for the dataset alarm, which needs a share of them above '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'threshold'))))
            yield ' (<code>thresholds.dataset_drift</code>); set it to 0 to be alerted by any drifted column.</li>'
        if ('prediction' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield "<li>The model's predictions moved: check the Model section before acting on its scores.</li>"
        if ('quality' in (undefined(name='kinds') if l_0_kinds is missing else l_0_kinds)):
            pass
            yield '<li>Fix the data quality problems listed below before trusting the drift results.</li>'
        if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'trigger_written'):
            pass
            yield '<li>Run <code>churnops pipeline</code> to version this batch with DVC and notify the team.</li>'
    else:
        pass
        yield '    <li>Nothing to do: keep monitoring. The next scheduled run compares the next batch.</li>\n'
    yield '  </ul>\n  <p>Reproduce this run: <code>'
    yield escape(environment.finalize(t_2(environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'reproduce_command'))))
    yield '</code></p>\n  <p>Batch version: '
    if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'dvc_version'):
        pass
        yield '<code>'
        yield escape(environment.finalize(t_2(environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'dvc_version'))))
        yield '</code>'
    else:
        pass
        yield 'not versioned with DVC yet'
    yield '.</p>\n</section>\n\n<section id="drift">\n  <h2>Drift by column</h2>\n'
    if (environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'verdict') == 'calibrated'):
        pass
        yield '  <p class="hint">Calibrated verdict, drifted columns first, then by adjusted p-value. Test: ks (Kolmogorov-Smirnov, numbers) or chi2 (chi-squared homogeneity, categories and numbers with few values). Effect: distance in reference standard deviations (numbers) or share of rows that changed category (categories). p (adjusted): Benjamini-Hochberg across the columns. Evidently\'s rule: what the column\'s own test and threshold say. Sparklines: reference <span class="swatch swatch-ref">filled blue</span>, current <span class="swatch swatch-cur">orange outline</span>.</p>\n'
    else:
        pass
        yield '  <p class="hint">Sorted by severity: drifted columns first, then by how far each statistic is from its threshold. Distances drift when they reach the threshold, p-values when they fall below it. Sparklines: reference <span class="swatch swatch-ref">filled blue</span>, current <span class="swatch swatch-cur">orange outline</span>.</p>\n'
    yield '  <div class="table-scroll">\n  <table class="drift-table">\n'
    if (environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'verdict') == 'calibrated'):
        pass
        yield '    <thead><tr><th scope="col">Column</th><th scope="col">Verdict</th><th scope="col">Test</th><th scope="col" class="num">Effect</th><th scope="col" class="num">p (adjusted)</th><th scope="col" class="num">Evidently\'s rule</th><th scope="col">Type</th><th scope="col">Reference vs current</th></tr></thead>\n'
    else:
        pass
        yield '    <thead><tr><th scope="col">Column</th><th scope="col">Verdict</th><th scope="col">Test</th><th scope="col" class="num">Statistic</th><th scope="col" class="num">p-value</th><th scope="col" class="num">Threshold</th><th scope="col">Type</th><th scope="col">Reference vs current</th></tr></thead>\n'
    yield '    <tbody>\n'
    for l_1_view in (undefined(name='columns') if l_0_columns is missing else l_0_columns):
        l_1_c = missing
        _loop_vars = {}
        pass
        l_1_c = environment.getattr(l_1_view, 'column')
        _loop_vars['c'] = l_1_c
        yield '    <tr class="'
        yield escape(environment.finalize(('row-drift' if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'drift_detected') else '')))
        yield '">\n      <th scope="row"><a href="#'
        yield escape(environment.finalize(environment.getattr(l_1_view, 'anchor')))
        yield '">'
        yield escape(environment.finalize(t_2(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'name'))))
        yield '</a></th>\n      <td>'
        if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'drift_detected'):
            pass
            yield '<span class="badge badge-drift">▲ drift</span>'
        else:
            pass
            yield '<span class="badge badge-ok">✓ ok</span>'
        yield '</td>\n      <td>'
        yield escape(environment.finalize((environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'test') if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration') else environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'test'))))
        yield '</td>\n      <td class="num">'
        yield escape(environment.finalize(environment.getattr(l_1_view, 'statistic')))
        yield '</td>\n      <td class="num">'
        yield escape(environment.finalize(environment.getattr(l_1_view, 'p_value')))
        yield '</td>\n      <td class="num">'
        yield escape(environment.finalize(environment.getattr(l_1_view, 'threshold')))
        yield '</td>\n      <td>'
        yield escape(environment.finalize(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'column_type')))
        yield '</td>\n      <td class="spark">'
        yield escape(environment.finalize(context.call((undefined(name='svg') if l_0_svg is missing else l_0_svg), environment.getattr(l_1_view, 'sparkline'), 'sparkline', _loop_vars=_loop_vars)))
        yield '</td>\n    </tr>\n'
    l_1_view = l_1_c = missing
    yield '    </tbody>\n  </table>\n  </div>\n'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'skipped'):
        pass
        yield '  <details class="skipped"><summary>'
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'skipped'))))
        yield ' '
        yield escape(environment.finalize(('column' if (t_7(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'skipped')) == 1) else 'columns')))
        yield ' not tested</summary>\n    <ul>'
        for l_1_s in environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'skipped'):
            _loop_vars = {}
            pass
            yield '<li><strong>'
            yield escape(environment.finalize(t_2(environment.getattr(l_1_s, 'name'))))
            yield '</strong>: '
            yield escape(environment.finalize(environment.getattr(l_1_s, 'reason')))
            yield '</li>'
        l_1_s = missing
        yield '</ul>\n  </details>\n'
    yield '  <p class="hint">Evidently\'s own dataset rule (share of drifted columns ≥ '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'evidently_drift_share'))))
    yield ') would say: <strong>'
    yield escape(environment.finalize(('drift' if environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'evidently_detected') else 'no drift')))
    yield '</strong>.</p>\n</section>\n'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'multivariate'):
        pass
        l_0_mv = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'multivariate')
        context.vars['mv'] = l_0_mv
        context.exported_vars.add('mv')
        yield '<section id="multivariate">\n  <h2>Multivariate drift</h2>\n  <p class="hint">Changes in how the columns go together, which no single column\'s test sees, measured on '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'reference_rows'))))
        yield ' sampled reference rows and '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'current_rows'))))
        yield ' batch rows. Each detector alarms at a p-value of at most '
        yield escape(environment.finalize(t_10((environment.getattr(environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'domain_classifier'), 'threshold') if environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'domain_classifier') else 0))))
        yield ' and a large enough effect.</p>\n'
        if environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'reason'):
            pass
            yield '  <p>Not computed: '
            yield escape(environment.finalize(environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'reason')))
            yield '.</p>\n'
        else:
            pass
            l_0_dc = environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'domain_classifier')
            context.vars['dc'] = l_0_dc
            context.exported_vars.add('dc')
            l_0_pc = environment.getattr((undefined(name='mv') if l_0_mv is missing else l_0_mv), 'pca_reconstruction')
            context.vars['pc'] = l_0_pc
            context.exported_vars.add('pc')
            yield '  <ul class="findings">\n    <li>'
            if environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'drift_detected'):
                pass
                yield '<span class="badge badge-drift">▲ drift</span>'
            else:
                pass
                yield '<span class="badge badge-ok">✓ ok</span>'
            yield ' <strong>Domain classifier</strong>: a model trained to tell batch rows from reference rows reaches a cross-validated ROC-AUC of <strong>'
            yield escape(environment.finalize(t_5('%.3f', environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'statistic'))))
            yield '</strong> (0.5 = cannot tell them apart; alarm from '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'min_effect'))))
            yield '), p '
            yield escape(environment.finalize(('' if (environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'p_value') == 0) else '= ')))
            yield escape(environment.finalize(t_12(environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'p_value'))))
            yield '.'
            if environment.getattr(environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'details'), 'separating_columns'):
                pass
                yield ' Columns that separate them most: '
                l_1_loop = missing
                for l_1_item, l_1_loop in LoopContext(environment.getattr(environment.getattr((undefined(name='dc') if l_0_dc is missing else l_0_dc), 'details'), 'separating_columns'), undefined):
                    _loop_vars = {}
                    pass
                    yield '<strong>'
                    yield escape(environment.finalize(t_2(environment.getattr(l_1_item, 'column'))))
                    yield '</strong> ('
                    yield escape(environment.finalize(t_5('%.3f', environment.getattr(l_1_item, 'auc_drop'))))
                    yield ')'
                    yield escape(environment.finalize((', ' if (not environment.getattr(l_1_loop, 'last')) else '.')))
                l_1_loop = l_1_item = missing
            yield '</li>\n    <li>'
            if environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'drift_detected'):
                pass
                yield '<span class="badge badge-drift">▲ drift</span>'
            else:
                pass
                yield '<span class="badge badge-ok">✓ ok</span>'
            yield " <strong>PCA reconstruction</strong>: the batch's rows are rebuilt from the reference's "
            yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'details'), 'components')))
            yield ' main components with an error <strong>x'
            yield escape(environment.finalize(t_5('%.3f', environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'statistic'))))
            yield "</strong> the reference's (alarm from x"
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'min_effect'))))
            yield '), p '
            yield escape(environment.finalize(('' if (environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'p_value') == 0) else '= ')))
            yield escape(environment.finalize(t_12(environment.getattr((undefined(name='pc') if l_0_pc is missing else l_0_pc), 'p_value'))))
            yield '.</li>\n  </ul>\n'
        yield '</section>\n'
    if (undefined(name='segment_matrix') if l_0_segment_matrix is missing else l_0_segment_matrix):
        pass
        l_0_m = (undefined(name='segment_matrix') if l_0_segment_matrix is missing else l_0_segment_matrix)
        context.vars['m'] = l_0_m
        context.exported_vars.add('m')
        yield '<section id="segments">\n  <h2>Where it drifted</h2>\n  <p class="hint">Every column tested again inside each segment (<code>drift.segments</code>), with at least '
        yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'segments'), 'min_rows'))))
        yield ' rows on both sides. <span class="cell-drift">▲ marks</span> a column that drifted inside the segment; numbers are the '
        yield escape(environment.finalize(environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'measure')))
        yield '.'
        if (environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'verdict') == 'calibrated'):
            pass
            yield " These tests are adjusted together with the whole batch's columns."
        yield '</p>\n'
        if environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'rows'):
            pass
            yield '  <div class="table-scroll">\n  <table class="segment-table">\n    <thead><tr><th scope="col">Segment</th><th scope="col" class="num">Rows (reference / batch)</th>'
            for l_1_name in environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'columns'):
                _loop_vars = {}
                pass
                yield '<th scope="col">'
                yield escape(environment.finalize(t_2(l_1_name)))
                yield '</th>'
            l_1_name = missing
            yield '</tr></thead>\n    <tbody>\n'
            for (l_1_label, l_1_reference_rows, l_1_current_rows, l_1_cells, l_1_detected) in environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'rows'):
                _loop_vars = {}
                pass
                yield '    <tr class="'
                yield escape(environment.finalize(('row-drift' if l_1_detected else '')))
                yield '"><th scope="row">'
                yield escape(environment.finalize(t_2(l_1_label)))
                yield '</th><td class="num">'
                yield escape(environment.finalize(l_1_reference_rows))
                yield ' / '
                yield escape(environment.finalize(l_1_current_rows))
                yield '</td>'
                for (l_2_text, l_2_drifted) in l_1_cells:
                    _loop_vars = {}
                    pass
                    yield '<td class="num'
                    yield escape(environment.finalize((' cell-drift' if l_2_drifted else '')))
                    yield '">'
                    yield escape(environment.finalize(('▲ ' if l_2_drifted else '')))
                    yield escape(environment.finalize(l_2_text))
                    yield '</td>'
                l_2_text = l_2_drifted = missing
                yield '</tr>\n'
            l_1_label = l_1_reference_rows = l_1_current_rows = l_1_cells = l_1_detected = missing
            yield '    </tbody>\n  </table>\n  </div>\n'
        else:
            pass
            yield '  <p>No segment had enough rows to be tested.</p>\n'
        if environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'untested'):
            pass
            yield '  <details class="skipped"><summary>'
            yield escape(environment.finalize(t_7(environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'untested'))))
            yield ' '
            yield escape(environment.finalize(('segment' if (t_7(environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'untested')) == 1) else 'segments')))
            yield ' not tested</summary>\n    <ul>'
            for (l_1_label, l_1_reason) in environment.getattr((undefined(name='m') if l_0_m is missing else l_0_m), 'untested'):
                _loop_vars = {}
                pass
                yield '<li><strong>'
                yield escape(environment.finalize(t_2(l_1_label)))
                yield '</strong>: '
                yield escape(environment.finalize(l_1_reason))
                yield '</li>'
            l_1_label = l_1_reason = missing
            yield '</ul>\n  </details>\n'
        yield '</section>\n'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'chunks'):
        pass
        l_0_ch = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'chunks')
        context.vars['ch'] = l_0_ch
        context.exported_vars.add('ch')
        yield '<section id="chunks">\n  <h2>Over time</h2>\n  <p class="hint">The batch cut into chunks ('
        yield escape(environment.finalize(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'by')))
        if environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'time_column'):
            pass
            yield ' of <code>'
            yield escape(environment.finalize(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'time_column')))
            yield '</code>'
        yield '), each compared with the whole reference; a chunk is tested with at least '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'min_rows'))))
        yield ' rows'
        if (environment.getattr((undefined(name='drift') if l_0_drift is missing else l_0_drift), 'verdict') == 'calibrated'):
            pass
            yield ", and the chunks' tests are adjusted together"
        yield '. '
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'detected'))))
        yield ' of '
        yield escape(environment.finalize(t_7(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'groups'))))
        yield ' '
        yield escape(environment.finalize(('chunk' if (t_7(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'groups')) == 1) else 'chunks')))
        yield ' drifted.'
        if environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'unplaced_rows'):
            pass
            yield ' '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'unplaced_rows'))))
            yield ' '
            yield escape(environment.finalize(('row has' if (environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'unplaced_rows') == 1) else 'rows have')))
            yield ' no usable time and '
            yield escape(environment.finalize(('is' if (environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'unplaced_rows') == 1) else 'are')))
            yield ' in no chunk.'
        yield '</p>\n'
        if (undefined(name='chunk_chart') if l_0_chunk_chart is missing else l_0_chunk_chart):
            pass
            yield '<div class="chart-box">'
            yield escape(environment.finalize(context.call((undefined(name='fluid_svg') if l_0_fluid_svg is missing else l_0_fluid_svg), (undefined(name='chunk_chart') if l_0_chunk_chart is missing else l_0_chunk_chart))))
            yield '</div>'
        if environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'detected'):
            pass
            yield '  <div class="table-scroll">\n  <table>\n    <thead><tr><th scope="col">Chunk</th><th scope="col" class="num">Rows</th><th scope="col">Drifted columns</th></tr></thead>\n    <tbody>\n'
            for l_1_g in environment.getattr((undefined(name='ch') if l_0_ch is missing else l_0_ch), 'detected'):
                _loop_vars = {}
                pass
                yield '<tr class="row-drift"><th scope="row">'
                yield escape(environment.finalize(t_2(environment.getattr(l_1_g, 'label'))))
                yield '</th><td class="num">'
                yield escape(environment.finalize(t_10(environment.getattr(l_1_g, 'rows'))))
                yield '</td><td>'
                yield escape(environment.finalize(t_2(t_6(context.eval_ctx, environment.getattr(l_1_g, 'drifted_columns'), ', '))))
                yield '</td></tr>\n'
            l_1_g = missing
            yield '    </tbody>\n  </table>\n  </div>\n'
        yield '</section>\n'
    yield '\n<section id="target">\n  <h2>Target drift</h2>\n'
    if t_18((undefined(name='target') if l_0_target is missing else l_0_target)):
        pass
        yield '  <p>No target column in these data.</p>\n'
    elif (not t_18(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'reference_rate'))):
        pass
        yield '  <div class="split">\n    <div>'
        yield escape(environment.finalize(context.call((undefined(name='svg') if l_0_svg is missing else l_0_svg), (undefined(name='rate_chart') if l_0_rate_chart is missing else l_0_rate_chart))))
        yield '</div>\n    <div>\n      <p>The share of <strong>'
        yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'column')))
        yield ' = '
        yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'positive_label')))
        yield '</strong> went from <strong>'
        yield escape(environment.finalize(t_11(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'reference_rate'))))
        yield '</strong> in the reference to <strong>'
        yield escape(environment.finalize(t_11(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'current_rate'))))
        yield '</strong> in the current batch: a change of <strong>'
        yield escape(environment.finalize(t_5('%+.2f', (environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'difference') * 100))))
        yield ' points</strong>, 95% confidence interval ['
        yield escape(environment.finalize(t_5('%+.2f', (environment.getitem(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'ci95'), 0) * 100))))
        yield ', '
        yield escape(environment.finalize(t_5('%+.2f', (environment.getitem(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'ci95'), 1) * 100))))
        yield '] points.</p>\n      <p>Two-proportion z-test, current minus reference: z = '
        yield escape(environment.finalize(t_5('%+.2f', environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'statistic'))))
        yield ', p '
        yield escape(environment.finalize(('' if (environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'p_value') == 0) else '= ')))
        yield escape(environment.finalize(t_12(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'p_value'))))
        yield ' →\n'
        if environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'drift_detected'):
            pass
            yield '<span class="badge badge-drift">▲ the target drifted</span>'
        else:
            pass
            yield '<span class="badge badge-ok">✓ no significant change</span>'
        yield ' (significance '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'threshold'))))
        yield ').</p>\n    </div>\n  </div>\n'
    else:
        pass
        yield '  <p>'
        yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'column')))
        yield ': '
        yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'test')))
        yield ' = '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'statistic'))))
        yield ' (threshold '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'threshold'))))
        yield ') → '
        yield escape(environment.finalize(('drift' if environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'drift_detected') else 'no drift')))
        if environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'note'):
            pass
            yield ' — '
            yield escape(environment.finalize(environment.getattr((undefined(name='target') if l_0_target is missing else l_0_target), 'note')))
        yield '.</p>\n'
    if environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'prediction_drift'):
        pass
        l_0_p = environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'prediction_drift')
        context.vars['p'] = l_0_p
        context.exported_vars.add('p')
        yield '  <p>Prediction drift ('
        yield escape(environment.finalize(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'name')))
        yield '): '
        yield escape(environment.finalize(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'test')))
        yield ' = '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'statistic'))))
        yield ' (threshold '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'threshold'))))
        yield ') → <strong>'
        yield escape(environment.finalize(('drift' if environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'drift_detected') else 'no drift')))
        yield '</strong>.</p>\n'
    yield '</section>\n\n'
    if ((undefined(name='model') if l_0_model is missing else l_0_model) and environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error')):
        pass
        yield '<section id="model">\n  <h2>Model: '
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'name')))
        if environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'version'):
            pass
            yield ' v'
            yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'version')))
        yield '</h2>\n  <p><span class="badge badge-warn">model check skipped</span> '
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'error')))
        yield '</p>\n  <p class="hint">Nothing about the model was measured in this run: its artifact was refused, so it was neither loaded nor run. Train it again with <code>churnops train</code>.</p>\n</section>\n'
    elif ((undefined(name='model') if l_0_model is missing else l_0_model) and environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay')):
        pass
        yield '<section id="model">\n  <h2>Model: '
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'name')))
        yield ' v'
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'version')))
        yield ' ('
        yield escape(environment.finalize(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'alias')))
        yield ')</h2>\n'
        l_0_decay = environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'decay')
        context.vars['decay'] = l_0_decay
        context.exported_vars.add('decay')
        yield '  <p>'
        if environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'detected'):
            pass
            yield '<span class="badge badge-drift">▲ model decay</span> The ROC-AUC fell by <strong>'
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'roc_auc_drop'))))
            yield '</strong> ('
            yield escape(environment.finalize(environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'basis')))
            yield '), more than the allowed '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'max_auc_drop'))))
            yield ': consider <code>churnops retrain</code>.'
        else:
            pass
            yield '<span class="badge badge-ok">✓ no decay</span> '
            l_0_drop = (environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'roc_auc_drop') or 0)
            context.vars['drop'] = l_0_drop
            context.exported_vars.add('drop')
            yield 'The ROC-AUC '
            yield escape(environment.finalize(('fell' if ((undefined(name='drop') if l_0_drop is missing else l_0_drop) > 0) else ('rose' if ((undefined(name='drop') if l_0_drop is missing else l_0_drop) < 0) else 'moved'))))
            yield ' by '
            yield escape(environment.finalize(t_10(t_1((undefined(name='drop') if l_0_drop is missing else l_0_drop)))))
            yield ' ('
            yield escape(environment.finalize(environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'basis')))
            yield '); the alert is at '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='decay') if l_0_decay is missing else l_0_decay), 'max_auc_drop'))))
            yield '.'
        yield '</p>\n  <div class="table-scroll"><table class="compact">\n    <thead><tr><th scope="col"></th><th scope="col" class="num">ROC-AUC</th><th scope="col" class="num">PR-AUC</th><th scope="col" class="num">F1</th><th scope="col" class="num">Precision</th><th scope="col" class="num">Recall</th><th scope="col" class="num">Brier</th><th scope="col" class="num">Positive rate</th></tr></thead>\n    <tbody>\n'
        for (l_1_label, l_1_m) in (('reference (validation)', environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'reference')), ('current, realized with labels', environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'realized')), ('current, estimated (CBPE)', environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'estimated'))):
            _loop_vars = {}
            pass
            if l_1_m:
                pass
                yield '<tr><th scope="row">'
                yield escape(environment.finalize(l_1_label))
                yield '</th><td class="num">'
                yield escape(environment.finalize(t_4(environment.getattr(l_1_m, 'roc_auc'))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_4(context.call(environment.getattr(l_1_m, 'get'), 'pr_auc', _loop_vars=_loop_vars))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_4(environment.getattr(l_1_m, 'f1'))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_4(environment.getattr(l_1_m, 'precision'))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_4(environment.getattr(l_1_m, 'recall'))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_4(context.call(environment.getattr(l_1_m, 'get'), 'brier', _loop_vars=_loop_vars))))
                yield '</td><td class="num">'
                yield escape(environment.finalize(t_14(environment.getattr(l_1_m, 'positive_rate'))))
                yield '</td></tr>'
        l_1_label = l_1_m = missing
        yield '    </tbody>\n  </table></div>\n  <p class="hint">Threshold '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'threshold'))))
        yield " (best F1 on the validation split). CBPE estimates performance from the model's calibrated probabilities alone; it holds when the inputs shift but the churn mechanism does not.</p>\n"
        l_0_p = environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'prediction_drift')
        context.vars['p'] = l_0_p
        context.exported_vars.add('p')
        yield '  <p>Prediction drift (churn probability): '
        yield escape(environment.finalize(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'test')))
        yield ' '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'statistic'))))
        yield ' vs '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'threshold'))))
        yield ' → '
        if environment.getattr((undefined(name='p') if l_0_p is missing else l_0_p), 'drift_detected'):
            pass
            yield '<span class="badge badge-drift">▲ drift</span>'
        else:
            pass
            yield '<span class="badge badge-ok">✓ ok</span>'
        yield '</p>\n'
        if environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'drifted_by_importance'):
            pass
            yield '  <p>Drifted columns by importance to the model:\n'
            l_1_loop = missing
            for l_1_name, l_1_loop in LoopContext(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'drifted_by_importance'), undefined):
                _loop_vars = {}
                pass
                yield '<strong>'
                yield escape(environment.finalize(l_1_name))
                yield '</strong> ('
                yield escape(environment.finalize(t_10(context.call(environment.getattr(environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'feature_importance'), 'get'), l_1_name, 0, _loop_vars=_loop_vars))))
                yield ')'
                if (l_1_name in environment.getattr((undefined(name='model') if l_0_model is missing else l_0_model), 'important_drifted')):
                    pass
                    yield ' <span class="badge badge-warn">important feature drifted</span>'
                yield escape(environment.finalize((', ' if (not environment.getattr(l_1_loop, 'last')) else '.')))
            l_1_loop = l_1_name = missing
            yield '</p>\n'
        yield '</section>\n'
    yield '\n<section id="columns">\n  <h2>Column details</h2>\n'
    if (t_7((undefined(name='columns') if l_0_columns is missing else l_0_columns)) > (undefined(name='max_charts') if l_0_max_charts is missing else l_0_max_charts)):
        pass
        yield '<p class="hint">Charts are drawn for the '
        yield escape(environment.finalize((undefined(name='max_charts') if l_0_max_charts is missing else l_0_max_charts)))
        yield " most severe columns; every column's numbers are in the tables below and in the metrics JSON.</p>"
    for l_1_view in (undefined(name='columns') if l_0_columns is missing else l_0_columns):
        l_1_c = missing
        _loop_vars = {}
        pass
        l_1_c = environment.getattr(l_1_view, 'column')
        _loop_vars['c'] = l_1_c
        yield '<details class="column '
        yield escape(environment.finalize(('column-drift' if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'drift_detected') else '')))
        yield '" id="'
        yield escape(environment.finalize(environment.getattr(l_1_view, 'anchor')))
        yield '"'
        if environment.getattr(l_1_view, 'open'):
            pass
            yield ' open'
        yield '>\n<summary><span class="column-name">'
        yield escape(environment.finalize(t_2(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'name'))))
        yield '</span> '
        if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'drift_detected'):
            pass
            yield '<span class="badge badge-drift">▲ drift</span>'
        else:
            pass
            yield '<span class="badge badge-ok">✓ ok</span>'
        yield ' <span class="summary-note">'
        if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'):
            pass
            yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'test')))
            yield ' p (adjusted) '
            yield escape(environment.finalize(t_12(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'adjusted_p_value'))))
            yield ', effect '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'effect'))))
            yield ' vs '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'min_effect'))))
            yield " · Evidently's "
            yield escape(environment.finalize(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'test')))
            yield ': '
            yield escape(environment.finalize(('drift' if environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'calibration'), 'evidently_drift_detected') else 'ok')))
        else:
            pass
            yield escape(environment.finalize(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'test')))
            yield ' '
            yield escape(environment.finalize((t_12(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'p_value')) if (environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'kind') == 'p_value') else t_10(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'statistic')))))
            yield ' vs '
            yield escape(environment.finalize(t_10(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'threshold'))))
        yield ' · '
        yield escape(environment.finalize(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'column_type')))
        if (environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'type_source') == 'inferred'):
            pass
            yield ' (inferred)'
        yield '</span></summary>\n<div class="column-body">\n'
        if environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'note'):
            pass
            yield '<p class="note">'
            yield escape(environment.finalize(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'note')))
            yield '</p>'
        if (not environment.getattr(l_1_view, 'tables')):
            pass
            yield '<p class="hint">'
            if environment.getattr(l_1_view, 'chart_omitted'):
                pass
                yield 'Chart omitted for this less severe column. '
            yield 'Reference: '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'count'))))
            yield ' values, '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'missing'))))
            yield ' missing'
            if (not t_18(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'mean'))):
                pass
                yield ', mean '
                yield escape(environment.finalize(t_17(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'mean'), environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'column_type'))))
            yield '. Current: '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'count'))))
            yield ' values, '
            yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'missing'))))
            yield ' missing'
            if (not t_18(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'mean'))):
                pass
                yield ', mean '
                yield escape(environment.finalize(t_17(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'mean'), environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'column_type'))))
            yield '. Full statistics are in the metrics JSON.</p>\n'
        else:
            pass
            yield '<div class="column-grid">\n<div class="column-charts">\n'
            for (l_2_caption, l_2_chart, l_2_note) in environment.getattr(l_1_view, 'charts'):
                _loop_vars = {}
                pass
                yield '<figure class="chart-box"><figcaption class="hint">'
                yield escape(environment.finalize(l_2_caption))
                yield '</figcaption>'
                yield escape(environment.finalize(context.call((undefined(name='fluid_svg') if l_0_fluid_svg is missing else l_0_fluid_svg), l_2_chart, _loop_vars=_loop_vars)))
                if l_2_note:
                    pass
                    yield '<p class="hint">'
                    yield escape(environment.finalize(l_2_note))
                    yield '</p>'
                yield '</figure>\n'
            l_2_caption = l_2_chart = l_2_note = missing
            if environment.getattr(l_1_view, 'chart_omitted'):
                pass
                yield '<p class="hint">Chart omitted for this less severe column.</p>'
            yield '</div>\n<div class="column-table">\n'
            if (environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'column_type') == 'categorical'):
                pass
                yield '<div class="table-scroll"><table class="compact">\n<thead><tr><th scope="col">Category</th><th scope="col" class="num">Reference</th><th scope="col" class="num">Current</th><th scope="col" class="num">Change, pts</th></tr></thead>\n<tbody>\n'
                for (l_2_name, l_2_ref, l_2_cur, l_2_change, l_2_status) in environment.getattr(l_1_view, 'category_rows'):
                    _loop_vars = {}
                    pass
                    yield '<tr><th scope="row">'
                    yield escape(environment.finalize(t_2(l_2_name)))
                    if l_2_status:
                        pass
                        yield ' <span class="badge badge-warn">'
                        yield escape(environment.finalize(l_2_status))
                        yield '</span>'
                    yield '</th><td class="num">'
                    yield escape(environment.finalize(l_2_ref))
                    yield '</td><td class="num">'
                    yield escape(environment.finalize(l_2_cur))
                    yield '</td><td class="num">'
                    yield escape(environment.finalize(l_2_change))
                    yield '</td></tr>\n'
                l_2_name = l_2_ref = l_2_cur = l_2_change = l_2_status = missing
                yield '</tbody>\n</table></div>\n<p class="hint">'
                yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'n_categories')))
                yield ' categories in the reference, '
                yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'n_categories')))
                yield ' in the current batch; missing values: '
                yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'reference'), 'missing'))))
                yield ' → '
                yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='c') if l_1_c is missing else l_1_c), 'current'), 'missing'))))
                yield '.</p>\n'
            else:
                pass
                yield '<div class="table-scroll"><table class="compact stats">\n<thead><tr><th scope="col"></th><th scope="col" class="num">Reference</th><th scope="col" class="num">Current</th><th scope="col" class="num">Change</th></tr></thead>\n<tbody>\n'
                for (l_2_label, l_2_ref, l_2_cur, l_2_change) in environment.getattr(l_1_view, 'stat_rows'):
                    _loop_vars = {}
                    pass
                    yield '<tr><th scope="row">'
                    yield escape(environment.finalize(l_2_label))
                    yield '</th><td>'
                    yield escape(environment.finalize(l_2_ref))
                    yield '</td><td>'
                    yield escape(environment.finalize(l_2_cur))
                    yield '</td><td>'
                    yield escape(environment.finalize(l_2_change))
                    yield '</td></tr>\n'
                l_2_label = l_2_ref = l_2_cur = l_2_change = missing
                yield '</tbody>\n</table></div>\n'
                if (not t_18(environment.getattr(l_1_view, 'mean_shift'))):
                    pass
                    yield '<p class="hint">Mean shift: '
                    yield escape(environment.finalize(t_5('%+.3f', environment.getattr(l_1_view, 'mean_shift'))))
                    yield ' reference standard deviations; spread ratio (current std / reference std): '
                    yield escape(environment.finalize(t_5('%.3f', environment.getattr(l_1_view, 'std_ratio'))))
                    yield '.</p>'
            yield '</div>\n</div>\n'
        yield '</div>\n</details>\n'
    l_1_view = l_1_c = missing
    yield '</section>\n\n<section id="quality">\n  <h2>Data quality</h2>\n  <p>Quality score <strong>'
    yield escape(environment.finalize(t_5('%.4f', environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'score'))))
    yield '</strong> ('
    if (environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'passed') or (environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'score') < environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'threshold'))):
        pass
        yield escape(environment.finalize(('PASS' if environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'passed') else 'WARNING: below')))
        yield ' the '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'threshold'))))
        yield ' threshold'
    else:
        pass
        yield 'WARNING: '
        yield escape(environment.finalize(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'failure')))
        yield ', whatever the score; threshold '
        yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'threshold'))))
    yield "): the share of the current batch's "
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'cells'))))
    yield ' monitored cells that are present, parseable, finite, inside their allowed range and not in a repeated row. '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'duplicated_rows'))))
    yield ' repeated rows, '
    yield escape(environment.finalize(t_10(environment.getattr((undefined(name='quality') if l_0_quality is missing else l_0_quality), 'duplicated_ids'))))
    yield ' repeated identifiers.</p>\n'
    if ((undefined(name='errors') if l_0_errors is missing else l_0_errors) or (undefined(name='warnings') if l_0_warnings is missing else l_0_warnings)):
        pass
        l_0_share = (undefined(name='quality_share') if l_0_quality_share is missing else l_0_quality_share)
        context.vars['share'] = l_0_share
        context.exported_vars.add('share')
        yield '  <div class="table-scroll"><table class="compact stack quality">\n    <thead><tr><th scope="col">Severity</th><th scope="col">Column</th><th scope="col">Check</th><th scope="col" class="num">Rows</th><th scope="col" class="num">Share</th><th scope="col">Detail</th></tr></thead>\n    <tbody>\n'
        for l_1_check in ((undefined(name='errors') if l_0_errors is missing else l_0_errors) + (undefined(name='warnings') if l_0_warnings is missing else l_0_warnings)):
            _loop_vars = {}
            pass
            yield '    <tr><td>'
            if (environment.getattr(l_1_check, 'severity') == 'error'):
                pass
                yield '<span class="badge badge-drift">error</span>'
            else:
                pass
                yield '<span class="badge badge-warn">warning</span>'
            yield '</td><td class="stack-head">'
            yield escape(environment.finalize(t_2((environment.getattr(l_1_check, 'column') or '(all columns)'))))
            yield '</td><td>'
            yield escape(environment.finalize(t_13(context.eval_ctx, environment.getattr(l_1_check, 'check'), '_', ' ')))
            yield '</td><td class="num" data-label="rows">'
            yield escape(environment.finalize(t_10(environment.getattr(l_1_check, 'count'))))
            yield '</td><td class="num" data-label="share">'
            yield escape(environment.finalize(context.call((undefined(name='share') if l_0_share is missing else l_0_share), environment.getattr(l_1_check, 'share'), _loop_vars=_loop_vars)))
            yield '</td><td class="detail">'
            yield escape(environment.finalize(t_2(environment.getattr(l_1_check, 'message'))))
            yield '</td></tr>\n'
        l_1_check = missing
        yield '    </tbody>\n  </table></div>\n  <p class="hint">Errors lower the score; warnings are reported only.</p>\n'
    else:
        pass
        yield '  <p><span class="badge badge-ok">✓ every check passed</span></p>\n'
    yield '</section>\n\n'
    if (undefined(name='trend_charts') if l_0_trend_charts is missing else l_0_trend_charts):
        pass
        yield '<section id="trends">\n  <h2>Trends</h2>\n'
        if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'history_note'):
            pass
            yield '<p class="hint">'
            yield escape(environment.finalize(environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'history_note')))
            yield '</p>'
        yield '  <div class="trend-grid">'
        for l_1_chart in (undefined(name='trend_charts') if l_0_trend_charts is missing else l_0_trend_charts):
            _loop_vars = {}
            pass
            yield '<div class="chart-box">'
            yield escape(environment.finalize(context.call((undefined(name='fluid_svg') if l_0_fluid_svg is missing else l_0_fluid_svg), l_1_chart, _loop_vars=_loop_vars)))
            yield '</div>'
        l_1_chart = missing
        yield '</div>\n</section>\n'
    yield '\n\n<section id="facts">\n  <h2>Run facts</h2>\n  <div class="table-scroll"><table class="compact facts stack">\n    <tbody>\n    <tr><th scope="row">Reference</th><td class="path">'
    yield escape(environment.finalize(t_2((environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'path') or 'in memory'))))
    yield '</td><td>'
    yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'rows'))))
    yield ' rows'
    if environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'row_range'):
        pass
        yield ' (rows '
        yield escape(environment.finalize(environment.getitem(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'row_range'), 0)))
        yield '–'
        yield escape(environment.finalize(environment.getitem(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'row_range'), 1)))
        yield ')'
    yield '</td><td>'
    if environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'sha256'):
        pass
        yield '<code>'
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'reference'), 'sha256')[:12]))
        yield '</code>'
    yield '</td></tr>\n    <tr><th scope="row">Current</th><td class="path">'
    yield escape(environment.finalize(t_2((environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'path') or 'in memory'))))
    yield '</td><td>'
    yield escape(environment.finalize(t_10(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'rows'))))
    yield ' rows</td><td>'
    if environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'sha256'):
        pass
        yield '<code>'
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'current'), 'sha256')[:12]))
        yield '</code>'
    yield '</td></tr>\n    <tr><th scope="row">Engine</th><td colspan="3">'
    yield escape(environment.finalize(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'engine')))
    yield ' · binning '
    yield escape(environment.finalize(context.call(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'settings'), 'get'), 'binning')))
    yield ' · churnops '
    yield escape(environment.finalize((undefined(name='version') if l_0_version is missing else l_0_version)))
    yield '</td></tr>\n    <tr><th scope="row">Time taken</th><td colspan="3">'
    yield escape(environment.finalize(t_5('%.2f', context.call(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'timings'), 'get'), 'total_s', t_15(environment, context.call(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'timings'), 'values')))))))
    yield ' s'
    def t_20(fiter):
        for (l_1_name, l_1_seconds) in fiter:
            if (l_1_name != 'total_s'):
                yield (l_1_name, l_1_seconds)
    for (l_1_name, l_1_seconds) in t_20(context.call(environment.getattr(environment.getattr((undefined(name='result') if l_0_result is missing else l_0_result), 'timings'), 'items'))):
        _loop_vars = {}
        pass
        yield ' · '
        yield escape(environment.finalize(t_13(context.eval_ctx, t_13(context.eval_ctx, l_1_name, '_s', ''), '_', ' ')))
        yield ' '
        yield escape(environment.finalize(t_5('%.2f', l_1_seconds)))
        yield ' s'
    l_1_name = l_1_seconds = missing
    yield '</td></tr>\n    <tr><th scope="row">Metrics</th><td colspan="3" class="path"><code>'
    yield escape(environment.finalize(t_2(environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'metrics_path'))))
    yield '</code></td></tr>\n    <tr><th scope="row">Trigger</th><td colspan="3" class="path"><code>'
    yield escape(environment.finalize(t_2(environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'trigger_path'))))
    yield '</code> '
    yield escape(environment.finalize(('written' if environment.getattr((undefined(name='context') if l_0_context is missing else l_0_context), 'trigger_written') else 'not written')))
    yield '</td></tr>\n    </tbody>\n  </table></div>\n</section>\n</main>\n<footer class="wrap"><p>Generated by churnops '
    yield escape(environment.finalize((undefined(name='version') if l_0_version is missing else l_0_version)))
    yield '. This page needs no JavaScript and renders under Jenkins\' default Content-Security-Policy. <a href="#top">Back to top</a></p></footer>\n</body>\n</html>'

blocks = {}
debug_info = '1=146&2=155&3=174&4=177&5=180&6=183&7=186&8=189&14=193&15=195&19=199&21=201&22=205&23=207&25=232&27=235&31=250&32=261&33=279&36=294&37=304&38=314&39=317&41=332&42=335&43=337&44=339&45=342&46=346&48=367&51=371&60=389&61=391&62=398&63=400&64=403&65=406&66=411&67=416&68=419&69=434&70=437&71=440&76=447&77=449&82=458&89=465&95=472&96=476&97=479&98=481&99=485&100=492&101=494&102=496&103=498&104=500&105=502&111=506&112=509&113=513&116=524&118=528&119=530&122=534&123=540&124=543&126=547&127=550&129=554&130=583&135=600&136=602&139=606&140=614&143=617&145=625&146=629&154=653&155=656&156=660&161=671&162=673&165=677&166=706&167=711&172=714&183=728&185=731&187=734&189=736&190=750&191=755&195=767&197=781&198=783&199=787&203=798&205=801&206=807&209=809&211=812&212=818&213=822&217=847&218=850&222=871&223=873&224=877&225=890&227=894&234=910&235=915&236=919&237=922&238=930&240=965&241=970&242=973&246=998&247=1002&249=1012&252=1016&256=1019&257=1023&261=1038&266=1049&267=1053&271=1063&283=1074&284=1095&285=1097&289=1101&290=1105&300=1128&303=1131&304=1137&313=1146&314=1164&315=1174&316=1180&317=1196&318=1198&323=1202'