/** A live line chart drawn as SVG: the last `points` samples of one or two series. */
const SVG = 'http://www.w3.org/2000/svg';

export class LineChart {
  private readonly series: number[][];
  private readonly lines: SVGPolylineElement[];
  constructor(
    readonly element: SVGSVGElement,
    names: readonly string[],
    /** Shows the chart's scale (text in an SVG stretched to its box would be distorted). */
    private readonly label: HTMLElement,
    private readonly points = 60,
  ) {
    element.setAttribute('viewBox', `0 0 ${points} 40`);
    element.setAttribute('preserveAspectRatio', 'none');
    this.series = names.map(() => []);
    this.lines = names.map((_, i) => {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('class', `series-${i}`);
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      element.append(line);
      return line;
    });
  }

  push(values: readonly number[]): void {
    values.forEach((v, i) => {
      const s = this.series[i];
      if (!s) return;
      s.push(v);
      if (s.length > this.points) s.shift();
    });
    const max = Math.max(1, ...this.series.flat());
    this.label.textContent = `scale: top = ${Math.round(max)}/s`;
    this.series.forEach((s, i) => {
      const offset = this.points - s.length;
      this.lines[i]?.setAttribute('points', s.map((v, x) => `${x + offset},${(40 - (v / max) * 32).toFixed(2)}`).join(' '));
    });
  }
}
