// Apache ECharts, tree-shaken to the bar and line charts the console draws, rendered on canvas.
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef } from "preact/hooks";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export interface Series {
  name: string;
  type: "bar" | "line";
  data: number[];
  stack?: string;
}

/** A chart over `categories`; `label` describes it to screen readers (the canvas is an image). */
export function Chart(props: { label: string; categories: string[]; series: Series[]; testId: string }) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!element.current) return;
    const chart = echarts.init(element.current, undefined, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 70, right: 20, top: 40, bottom: 30 },
      xAxis: { type: "category", data: props.categories },
      yAxis: { type: "value" },
      series: props.series.map((item) => ({ ...item, emphasis: { focus: "series" } })),
    });
    const resize = () => chart.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      chart.dispose();
    };
  }, [props.categories, props.series]);
  return <div class="chart" ref={element} role="img" aria-label={props.label} data-testid={props.testId} />;
}
