from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = '_svg.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_svg = l_0_fluid_svg = missing
    try:
        t_1 = environment.filters['c']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'c' found.")
    pass
    def macro(l_1_chart, l_1_cls):
        t_2 = []
        if l_1_chart is missing:
            l_1_chart = undefined("parameter 'chart' was not provided", name='chart')
        if l_1_cls is missing:
            l_1_cls = 'chart'
        pass
        if l_1_chart:
            pass
            t_2.extend((
                '<svg class="',
                escape(environment.finalize(l_1_cls)),
                '" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ',
                escape(environment.finalize(environment.getattr(l_1_chart, 'width'))),
                ' ',
                escape(environment.finalize(environment.getattr(l_1_chart, 'height'))),
                '" width="',
                escape(environment.finalize(environment.getattr(l_1_chart, 'width'))),
                '" height="',
                escape(environment.finalize(environment.getattr(l_1_chart, 'height'))),
                '" role="img" aria-label="',
                escape(environment.finalize(environment.getattr(l_1_chart, 'title'))),
                '"',
            ))
            if environment.getattr(l_1_chart, 'text'):
                pass
                t_2.append(
                    ' font-family="-apple-system, \'Segoe UI\', Roboto, \'Helvetica Neue\', Arial, sans-serif"',
                )
            t_2.extend((
                '><title>',
                escape(environment.finalize(environment.getattr(l_1_chart, 'title'))),
                '</title>',
            ))
            for l_2_l in environment.getattr(l_1_chart, 'lines'):
                _loop_vars = {}
                pass
                t_2.extend((
                    '<line x1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x1')))),
                    '" y1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y1')))),
                    '" x2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x2')))),
                    '" y2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y2')))),
                    '" stroke="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'stroke'))),
                    '" stroke-width="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'width'))),
                    '"',
                ))
                if environment.getattr(l_2_l, 'dash'):
                    pass
                    t_2.extend((
                        ' stroke-dasharray="',
                        escape(environment.finalize(environment.getattr(l_2_l, 'dash'))),
                        '"',
                    ))
                t_2.append(
                    '/>',
                )
            l_2_l = missing
            for l_2_b in environment.getattr(l_1_chart, 'bars'):
                _loop_vars = {}
                pass
                t_2.extend((
                    '<rect x="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'x')))),
                    '" y="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'y')))),
                    '" width="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'width')))),
                    '" height="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'height')))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_b, 'fill'))),
                    '"',
                ))
                if (environment.getattr(l_2_b, 'stroke') != 'none'):
                    pass
                    t_2.extend((
                        ' stroke="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'stroke'))),
                        '" stroke-width="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'stroke_width'))),
                        '"',
                    ))
                if (environment.getattr(l_2_b, 'opacity') < 1):
                    pass
                    t_2.extend((
                        ' fill-opacity="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'opacity'))),
                        '"',
                    ))
                t_2.append(
                    '>',
                )
                if environment.getattr(l_2_b, 'title'):
                    pass
                    t_2.extend((
                        '<title>',
                        escape(environment.finalize(environment.getattr(l_2_b, 'title'))),
                        '</title>',
                    ))
                t_2.append(
                    '</rect>',
                )
            l_2_b = missing
            for l_2_p in environment.getattr(l_1_chart, 'paths'):
                _loop_vars = {}
                pass
                t_2.extend((
                    '<path d="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'd'))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'fill'))),
                    '"',
                ))
                if (environment.getattr(l_2_p, 'opacity') < 1):
                    pass
                    t_2.extend((
                        ' fill-opacity="',
                        escape(environment.finalize(environment.getattr(l_2_p, 'opacity'))),
                        '"',
                    ))
                if (environment.getattr(l_2_p, 'stroke') != 'none'):
                    pass
                    t_2.extend((
                        ' stroke="',
                        escape(environment.finalize(environment.getattr(l_2_p, 'stroke'))),
                        '" stroke-width="',
                        escape(environment.finalize(environment.getattr(l_2_p, 'width'))),
                        '" stroke-linejoin="round"',
                    ))
                t_2.append(
                    '/>',
                )
            l_2_p = missing
            for l_2_t in environment.getattr(l_1_chart, 'labels'):
                _loop_vars = {}
                pass
                t_2.extend((
                    '<text x="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_t, 'x')))),
                    '" y="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_t, 'y')))),
                    '" text-anchor="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'anchor'))),
                    '" font-size="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'size'))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'fill'))),
                    '"',
                ))
                if (environment.getattr(l_2_t, 'weight') != 'normal'):
                    pass
                    t_2.extend((
                        ' font-weight="',
                        escape(environment.finalize(environment.getattr(l_2_t, 'weight'))),
                        '"',
                    ))
                if environment.getattr(l_2_t, 'halo'):
                    pass
                    t_2.append(
                        ' stroke="#ffffff" stroke-width="3" paint-order="stroke"',
                    )
                t_2.extend((
                    '>',
                    escape(environment.finalize(environment.getattr(l_2_t, 'text'))),
                    '</text>',
                ))
            l_2_t = missing
            t_2.append(
                '</svg>',
            )
        return concat(t_2)
    context.exported_vars.add('svg')
    context.vars['svg'] = l_0_svg = Macro(environment, macro, 'svg', ('chart', 'cls'), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_chart):
        t_3 = []
        if l_1_chart is missing:
            l_1_chart = undefined("parameter 'chart' was not provided", name='chart')
        pass
        if l_1_chart:
            pass
            t_3.extend((
                '<svg class="chart-fluid" xmlns="http://www.w3.org/2000/svg" width="100%" height="',
                escape(environment.finalize(environment.getattr(l_1_chart, 'height'))),
                '" role="img" aria-label="',
                escape(environment.finalize(environment.getattr(l_1_chart, 'title'))),
                '" font-family="-apple-system, \'Segoe UI\', Roboto, \'Helvetica Neue\', Arial, sans-serif"><title>',
                escape(environment.finalize(environment.getattr(l_1_chart, 'title'))),
                '</title>',
            ))
            for l_2_l in environment.getattr(l_1_chart, 'lines'):
                _loop_vars = {}
                pass
                t_3.extend((
                    '<line x1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x1')))),
                    '%" y1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y1')))),
                    '" x2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x2')))),
                    '%" y2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y2')))),
                    '" stroke="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'stroke'))),
                    '" stroke-width="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'width'))),
                    '"',
                ))
                if environment.getattr(l_2_l, 'dash'):
                    pass
                    t_3.extend((
                        ' stroke-dasharray="',
                        escape(environment.finalize(environment.getattr(l_2_l, 'dash'))),
                        '"',
                    ))
                t_3.append(
                    '/>',
                )
            l_2_l = missing
            t_3.extend((
                '<svg y="',
                escape(environment.finalize(t_1(environment.getattr(l_1_chart, 'plot_top')))),
                '" width="100%" height="',
                escape(environment.finalize(t_1(environment.getattr(l_1_chart, 'plot_height')))),
                '" viewBox="0 0 1000 ',
                escape(environment.finalize(t_1(environment.getattr(l_1_chart, 'plot_height')))),
                '" preserveAspectRatio="none" overflow="visible">',
            ))
            for l_2_b in environment.getattr(l_1_chart, 'bars'):
                _loop_vars = {}
                pass
                t_3.extend((
                    '<rect x="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'x')))),
                    '" y="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'y')))),
                    '" width="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'width')))),
                    '" height="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_b, 'height')))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_b, 'fill'))),
                    '"',
                ))
                if (environment.getattr(l_2_b, 'opacity') < 1):
                    pass
                    t_3.extend((
                        ' fill-opacity="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'opacity'))),
                        '"',
                    ))
                if (environment.getattr(l_2_b, 'stroke') != 'none'):
                    pass
                    t_3.extend((
                        ' stroke="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'stroke'))),
                        '" stroke-width="',
                        escape(environment.finalize(environment.getattr(l_2_b, 'stroke_width'))),
                        '" vector-effect="non-scaling-stroke"',
                    ))
                t_3.append(
                    '/>',
                )
            l_2_b = missing
            for l_2_p in environment.getattr(l_1_chart, 'paths'):
                _loop_vars = {}
                pass
                t_3.extend((
                    '<path d="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'd'))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'fill'))),
                    '" stroke="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'stroke'))),
                    '" stroke-width="',
                    escape(environment.finalize(environment.getattr(l_2_p, 'width'))),
                    '" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>',
                ))
            l_2_p = missing
            for l_2_l in environment.getattr(l_1_chart, 'marks'):
                _loop_vars = {}
                pass
                t_3.extend((
                    '<line x1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x1')))),
                    '" y1="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y1')))),
                    '" x2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'x2')))),
                    '" y2="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_l, 'y2')))),
                    '" stroke="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'stroke'))),
                    '" stroke-width="',
                    escape(environment.finalize(environment.getattr(l_2_l, 'width'))),
                    '"',
                ))
                if environment.getattr(l_2_l, 'dash'):
                    pass
                    t_3.extend((
                        ' stroke-dasharray="',
                        escape(environment.finalize(environment.getattr(l_2_l, 'dash'))),
                        '"',
                    ))
                if environment.getattr(l_2_l, 'cap'):
                    pass
                    t_3.extend((
                        ' stroke-linecap="',
                        escape(environment.finalize(environment.getattr(l_2_l, 'cap'))),
                        '"',
                    ))
                t_3.append(
                    ' vector-effect="non-scaling-stroke"/>',
                )
            l_2_l = missing
            if environment.getattr(l_1_chart, 'hits'):
                pass
                t_3.append(
                    '<g fill="#ffffff" fill-opacity="0">',
                )
                for l_2_b in environment.getattr(l_1_chart, 'hits'):
                    _loop_vars = {}
                    pass
                    t_3.extend((
                        '<rect x="',
                        escape(environment.finalize(t_1(environment.getattr(l_2_b, 'x')))),
                        '" y="',
                        escape(environment.finalize(t_1(environment.getattr(l_2_b, 'y')))),
                        '" width="',
                        escape(environment.finalize(t_1(environment.getattr(l_2_b, 'width')))),
                        '" height="',
                        escape(environment.finalize(t_1(environment.getattr(l_2_b, 'height')))),
                        '"><title>',
                        escape(environment.finalize(environment.getattr(l_2_b, 'title'))),
                        '</title></rect>',
                    ))
                l_2_b = missing
                t_3.append(
                    '</g>',
                )
            t_3.append(
                '</svg>',
            )
            for l_2_t in environment.getattr(l_1_chart, 'labels'):
                _loop_vars = {}
                pass
                t_3.append(
                    '<text',
                )
                if environment.getattr(l_2_t, 'wide_only'):
                    pass
                    t_3.append(
                        ' class="wide-only"',
                    )
                t_3.extend((
                    ' x="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_t, 'x')))),
                    '%" y="',
                    escape(environment.finalize(t_1(environment.getattr(l_2_t, 'y')))),
                    '" text-anchor="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'anchor'))),
                    '" font-size="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'size'))),
                    '" fill="',
                    escape(environment.finalize(environment.getattr(l_2_t, 'fill'))),
                    '"',
                ))
                if (environment.getattr(l_2_t, 'weight') != 'normal'):
                    pass
                    t_3.extend((
                        ' font-weight="',
                        escape(environment.finalize(environment.getattr(l_2_t, 'weight'))),
                        '"',
                    ))
                if environment.getattr(l_2_t, 'halo'):
                    pass
                    t_3.append(
                        ' stroke="#ffffff" stroke-width="3" paint-order="stroke"',
                    )
                t_3.extend((
                    '>',
                    escape(environment.finalize(environment.getattr(l_2_t, 'text'))),
                    '</text>',
                ))
            l_2_t = missing
            t_3.append(
                '</svg>',
            )
        return concat(t_3)
    context.exported_vars.add('fluid_svg')
    context.vars['fluid_svg'] = l_0_fluid_svg = Macro(environment, macro, 'fluid_svg', ('chart',), False, False, False, context.eval_ctx.autoescape)

blocks = {}
debug_info = '2=18&3=25&4=29&5=52&6=81&7=127&8=157&15=197&16=202&17=206&18=213&19=244&20=251&21=287&22=302&23=338&25=366'